/**
 * The queue dashboard's passwords for `npm start` on a developer's machine: without any
 * DASHBOARD_*_PASSWORD the dashboard is off, so `npm start` makes an operator and a viewer
 * password once, keeps them in .courier/dashboard.json (ignored by git, readable by its owner
 * only), and hands them to the processes it starts. Set the variables to choose your own.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const DEV_DASHBOARD_FILE = join(import.meta.dirname, '..', '.courier', 'dashboard.json');

export interface DevDashboard {
  /** The variables to give the processes (none when the environment sets its own). */
  readonly env: Record<string, string>;
  /** What `npm start` prints beside the dashboard's URL. */
  readonly note: string;
}

const VARIABLES = ['DASHBOARD_OPERATOR_PASSWORD', 'DASHBOARD_PASSWORD', 'DASHBOARD_VIEWER_PASSWORD'];

function stored(file: string): { operator: string; viewer: string } | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { operator?: unknown; viewer?: unknown };
    const ok = (value: unknown): value is string => typeof value === 'string' && value.length >= 12;
    return ok(parsed.operator) && ok(parsed.viewer) ? { operator: parsed.operator, viewer: parsed.viewer } : undefined;
  } catch {
    return undefined; // made again below
  }
}

export function devDashboard(env: NodeJS.ProcessEnv, file = DEV_DASHBOARD_FILE): DevDashboard {
  if (VARIABLES.some((name) => env[name])) return { env: {}, note: 'users operator and viewer, passwords from DASHBOARD_*_PASSWORD' };
  let passwords = stored(file);
  if (!passwords) {
    passwords = { operator: randomBytes(18).toString('base64url'), viewer: randomBytes(18).toString('base64url') };
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
  }
  return {
    env: { DASHBOARD_OPERATOR_PASSWORD: passwords.operator, DASHBOARD_VIEWER_PASSWORD: passwords.viewer },
    note: `operator / ${passwords.operator}, viewer / ${passwords.viewer}  (.courier/dashboard.json)`,
  };
}
