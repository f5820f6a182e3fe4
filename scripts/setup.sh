#!/usr/bin/env bash
# Sets up whatever is missing for Courier on a Debian machine with Node 20, and nothing more:
#   1. npm dependencies (installed when package-lock.json changed since the last install)
#   2. MariaDB and Redis: installed with apt when missing, started when not running
#      (directly, as a person would: there is no systemd here), for local URLs only
#   3. the database, its migrations, and (unless --no-demo) the demo data and client key
# Idempotent and quick when nothing is missing; never touches a service that is already running.
#
# Usage: scripts/setup.sh [--no-demo]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO_FLAG=""
for arg in "$@"; do
  case "$arg" in
    --no-demo) DEMO_FLAG="--no-demo" ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306/courier}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

# --- 1. dependencies --------------------------------------------------------------------------
command -v node >/dev/null || die "Node.js 20 is required (apt-get install nodejs, or see nodejs.org)"
# 20.18.1: what undici 7 (the notification provider's HTTP client) needs.
node -e 'const [a, b, c] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1)' \
  || die "Node.js 20.18.1 or newer is required, found $(node --version)"

lock_sum() { cat package.json package-lock.json | sha256sum | cut -d' ' -f1; }
if [ ! -f node_modules/.courier-installed ] || [ "$(cat node_modules/.courier-installed)" != "$(lock_sum)" ]; then
  # npm install, not npm ci: npm 11 writes lock files that its own ci then rejects for
  # missing optional platform packages; install still follows the lock file's versions.
  say "installing npm dependencies (npm install) ..."
  npm install --no-audit --no-fund --loglevel=error
  lock_sum > node_modules/.courier-installed
else
  say "npm dependencies are installed"
fi

# --- 2. services ------------------------------------------------------------------------------
url_part() { node -e 'const u = new URL(process.argv[1]); console.log(process.argv[2] === "port" ? (u.port || process.argv[3]) : u[process.argv[2]])' "$1" "$2" "${3:-}"; }
is_local() { case "$1" in 127.0.0.1|localhost|::1|\[::1\]) return 0 ;; *) return 1 ;; esac; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

APT_UPDATED=""
apt_install() {
  [ "$(id -u)" = 0 ] || die "$1 is missing; run as root, or install it yourself: apt-get install -y $*"
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update ..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing $* with apt ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for_port() { # name host port seconds
  local i
  for ((i = 0; i < $4 * 5; i++)); do
    port_open "$2" "$3" && return 0
    sleep 0.2
  done
  die "$1 did not start listening on $2:$3 within $4 s (see its log)"
}

MYSQL_HOST=$(url_part "$MYSQL_URL" hostname)
MYSQL_PORT=$(url_part "$MYSQL_URL" port 3306)
if port_open "$MYSQL_HOST" "$MYSQL_PORT"; then
  say "MariaDB is running on $MYSQL_HOST:$MYSQL_PORT"
elif is_local "$MYSQL_HOST"; then
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
  say "starting MariaDB on port $MYSQL_PORT ..."
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --port="$MYSQL_PORT"
  wait_for_port MariaDB "$MYSQL_HOST" "$MYSQL_PORT" 60
  say "MariaDB started"
else
  die "MariaDB at $MYSQL_HOST:$MYSQL_PORT (MYSQL_URL) is not reachable, and it is not local, so setup cannot start it"
fi

# A fresh Debian MariaDB lets root in only over its socket; the default URL logs in as root with
# no password over TCP. Allow that (on a local server only, and only when it is what is refused).
MYSQL_USER=$(url_part "$MYSQL_URL" username)
MYSQL_PASS=$(url_part "$MYSQL_URL" password)
if is_local "$MYSQL_HOST" && [ "${MYSQL_USER:-root}" = root ] && [ -z "$MYSQL_PASS" ] && command -v mariadb >/dev/null; then
  if ! mariadb -h 127.0.0.1 -P "$MYSQL_PORT" -u root -e 'SELECT 1' >/dev/null 2>&1; then
    if mariadb -u root -e 'SELECT 1' >/dev/null 2>&1; then
      say "allowing root@localhost to log in over TCP with an empty password (local development server)"
      mariadb -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
    fi
  fi
fi

REDIS_HOST=$(url_part "$REDIS_URL" hostname)
REDIS_PORT=$(url_part "$REDIS_URL" port 6379)
if port_open "$REDIS_HOST" "$REDIS_PORT"; then
  say "Redis is running on $REDIS_HOST:$REDIS_PORT"
elif is_local "$REDIS_HOST"; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis on port $REDIS_PORT (no persistence, as Courier runs it) ..."
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/courier.log
  wait_for_port Redis "$REDIS_HOST" "$REDIS_PORT" 30
  say "Redis started"
else
  die "Redis at $REDIS_HOST:$REDIS_PORT (REDIS_URL) is not reachable, and it is not local, so setup cannot start it"
fi

# --- 3. database, migrations, demo data ---------------------------------------------------------
"$ROOT/node_modules/.bin/tsx" scripts/setup-db.ts $DEMO_FLAG
