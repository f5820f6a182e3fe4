#!/usr/bin/env bash
# Sets up whatever is missing for Courier on a Debian machine, and nothing more:
#   0. Node 24: the machine's node when it is 24.11 or newer, else Node 24 from the npm registry
#      in .courier/node/ (the machine keeps its own node); .courier/bin/node is the one scripts/node runs
#   1. npm dependencies (npm ci, when package.json, package-lock.json or the Node changed)
#   2. MariaDB and Redis: installed with apt when missing, started when not running
#      (directly, as a person would: there is no systemd here), for local URLs only
#   3. the database, its migrations, and (unless --no-demo) the demo data and client key
#   4. with --browser (npm test): Debian's Chromium, which the browser test drives, when missing
#   5. with --promtool (npm test): Debian's prometheus package for /usr/bin/promtool, which the
#      metrics test checks every process's /metrics with, when missing
#   6. with --wrk (npm run bench:reads): Debian's wrk, the load generator the reads bench checks its
#      ratios with, when missing (as root; otherwise the bench says it is left out)
# Idempotent and quick when nothing is missing; never touches a service that is already running.
#
# Usage: scripts/setup.sh [--no-demo] [--browser] [--promtool] [--wrk]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO_FLAG=""
BROWSER=""
PROMTOOL=""
WRK=""
for arg in "$@"; do
  case "$arg" in
    --no-demo) DEMO_FLAG="--no-demo" ;;
    --browser) BROWSER=1 ;;
    --promtool) PROMTOOL=1 ;;
    --wrk) WRK=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306/courier}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

# --- 0. Node 24 ------------------------------------------------------------------------------
# Courier runs on Node 24, the LTS line: its own type stripping runs our TypeScript with no compile
# step at start. A machine whose node is older (Debian's Node 20) gets the official Node 24 binary
# as the npm registry ships it (package node-linux-<arch>, the one the `node` package installs),
# unpacked into .courier/node/<version>: the machine's node stays as it is. 24.11 is the first
# release of the 24 LTS line; any newer node is used as it is.
NODE_VERSION=24.22.3
NODE_FLOOR=24.11.0
version_at_least() { [ "$(printf '%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; } # version floor

SYSTEM_NODE=$(command -v node || true)
case "$SYSTEM_NODE" in "$ROOT"/.courier/*) SYSTEM_NODE="" ;; esac # never our own link
SYSTEM_NODE_VERSION=$([ -n "$SYSTEM_NODE" ] && "$SYSTEM_NODE" --version || echo none)
mkdir -p .courier/bin
if [ -n "$SYSTEM_NODE" ] && version_at_least "${SYSTEM_NODE_VERSION#v}" "$NODE_FLOOR"; then
  ln -sfn "$SYSTEM_NODE" .courier/bin/node
  say "Node $SYSTEM_NODE_VERSION (this machine's)"
else
  case "$(uname -m)" in
    x86_64) NODE_ARCH=x64 ;;
    aarch64 | arm64) NODE_ARCH=arm64 ;;
    *) die "Node $NODE_FLOOR or newer is required, and set-up brings it only for Linux x64 and arm64" ;;
  esac
  NODE_DIR=.courier/node/$NODE_VERSION
  if [ ! -x "$NODE_DIR/bin/node" ]; then
    command -v npm >/dev/null || die "npm is needed to bring Node $NODE_VERSION (apt-get install nodejs npm)"
    say "this machine's node is $SYSTEM_NODE_VERSION; Courier runs on Node 24 ($NODE_FLOOR or newer):"
    say "bringing Node $NODE_VERSION from the npm registry (node-linux-$NODE_ARCH, ~50 MB) into $NODE_DIR ..."
    mkdir -p .courier/node
    fetch=$(mktemp -d .courier/node/.fetch.XXXXXX)
    # npm pack checks the tarball against the registry's integrity hash; the rename makes it all or nothing.
    npm pack --silent --pack-destination "$fetch" "node-linux-$NODE_ARCH@$NODE_VERSION" >/dev/null \
      || { rm -rf "$fetch"; die "could not fetch node-linux-$NODE_ARCH@$NODE_VERSION from the npm registry"; }
    tar -xzf "$fetch"/*.tgz -C "$fetch"
    [ "$("$fetch/package/bin/node" --version)" = "v$NODE_VERSION" ] || { rm -rf "$fetch"; die "the fetched Node does not run here"; }
    rm -rf "$NODE_DIR" && mv "$fetch/package" "$NODE_DIR" && rm -rf "$fetch"
  fi
  # Versions set-up brought before and no longer uses.
  find .courier/node -mindepth 1 -maxdepth 1 ! -name "$NODE_VERSION" -exec rm -rf {} +
  ln -sfn "../node/$NODE_VERSION/bin/node" .courier/bin/node
  say "Node v$NODE_VERSION (in $NODE_DIR; this machine's node is $SYSTEM_NODE_VERSION)"
fi
NODE="$ROOT/.courier/bin/node"
# npm itself, and the install scripts of the dependencies, run on the same Node.
export PATH="$ROOT/.courier/bin:$PATH"

# --- 1. dependencies --------------------------------------------------------------------------
# npm ci: exactly the lock file, which it never rewrites (the clone stays clean). The marker holds
# what was installed from: a new lock file, or another Node, installs again.
install_sum() { { cat package.json package-lock.json; "$NODE" --version; } | sha256sum | cut -d' ' -f1; }
if [ ! -f node_modules/.courier-installed ] || [ "$(cat node_modules/.courier-installed)" != "$(install_sum)" ]; then
  say "installing npm dependencies (npm ci) ..."
  npm ci --no-audit --no-fund --loglevel=error
  install_sum > node_modules/.courier-installed
else
  say "npm dependencies are installed"
fi

# --- 2. services ------------------------------------------------------------------------------
url_part() { "$NODE" -e 'const u = new URL(process.argv[1]); console.log(process.argv[2] === "port" ? (u.port || process.argv[3]) : u[process.argv[2]])' "$1" "$2" "${3:-}"; }
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
"$NODE" scripts/setup-db.ts $DEMO_FLAG

# --- 4. a browser for the browser test (npm test only) ------------------------------------------
# test/dashboard-browser.test.ts drives Debian's Chromium with playwright-core (an npm package with
# no browser of its own: nothing is downloaded besides the apt package).
if [ -n "$BROWSER" ]; then
  if [ -x /usr/bin/chromium ]; then
    say "Chromium is installed ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
  else
    [ "$(id -u)" = 0 ] || die "the browser test needs Chromium at /usr/bin/chromium; run npm test as root once, or install it yourself: apt-get install -y chromium"
    apt_install chromium
    [ -x /usr/bin/chromium ] || die "apt installed chromium, but /usr/bin/chromium is not there"
    say "Chromium installed ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
  fi
fi

# --- 5. promtool for the metrics test (npm test only) -------------------------------------------
# test/metrics.test.ts runs `promtool check metrics` on each process's /metrics. Debian ships
# promtool only in its prometheus package (~96 MB installed, the server beside it; nothing is
# started: there is no systemd here). Without recommends, no exporters come along.
if [ -n "$PROMTOOL" ]; then
  if [ -x /usr/bin/promtool ]; then
    say "promtool is installed ($(/usr/bin/promtool --version 2>&1 | head -n1))"
  else
    [ "$(id -u)" = 0 ] || die "the metrics test needs promtool at /usr/bin/promtool; run npm test as root once, or install it yourself: apt-get install -y --no-install-recommends prometheus"
    apt_install --no-install-recommends prometheus
    [ -x /usr/bin/promtool ] || die "apt installed prometheus, but /usr/bin/promtool is not there"
    say "promtool installed ($(/usr/bin/promtool --version 2>&1 | head -n1))"
  fi
fi

# --- 6. wrk for the reads bench (npm run bench:reads only) -----------------------------------------
# The reads bench's ratios over the bare hello-world are checked with wrk too, a load generator in
# C whose own cost per request is small beside the server's (autocannon's, in Node, is not).
if [ -n "$WRK" ]; then
  if command -v wrk >/dev/null 2>&1; then
    say "wrk is installed"
  elif [ "$(id -u)" = 0 ]; then
    apt_install wrk
    say "wrk installed"
  else
    say "wrk is not installed and this is not root: the reads bench leaves its wrk check out (apt-get install -y wrk)"
  fi
fi
