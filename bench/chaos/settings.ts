/**
 * The chaos run's settings (`npm run chaos -- --help`) and its two profiles: the full run, and
 * --quick, the short one `npm test` runs. A setting left at 0 takes its profile's value.
 */
import { choices, flag, int, parseSettings, text } from '../lib/settings.ts';

export const SCENARIO_KEYS = ['kill', 'redis', 'mariadb', 'provider', 'requests'] as const;
export type ScenarioKey = (typeof SCENARIO_KEYS)[number];

export const settings = parseSettings(
  'npm run chaos --',
  'Chaos: the Procfile fleet (two workers) on a MariaDB and a Redis of its own, orders at a steady rate, and faults one scenario at a time, each ending with a check of every accepted order.',
  {
    quick: flag('--quick', 'CHAOS_QUICK', 'the short run npm test runs: a low rate, short faults, every check'),
    scenarios: choices('--scenarios', 'CHAOS_SCENARIOS', SCENARIO_KEYS, 'the scenarios to run, in this order'),
    rate: int('--rate', 'CHAOS_RATE', 0, 0, 2000, "valid orders per second during each scenario (0: the profile's, quick 10, full 40)"),
    faultSeconds: int('--fault-seconds', 'CHAOS_FAULT_S', 0, 0, 600, "length of each fault (0: the profile's, quick 3, full 24)"),
    calmSeconds: int('--calm-seconds', 'CHAOS_CALM_S', 0, 0, 600, "steady load before and after each fault (0: the profile's, quick 1, full 8)"),
    settleBoundS: int('--settle-bound', 'CHAOS_SETTLE_BOUND_S', 0, 0, 3600, "longest wait for a scenario's orders and notifications to settle after its load (0: the profile's, quick 45, full 180)"),
    requestBoundMs: int('--request-bound-ms', 'CHAOS_REQUEST_BOUND_MS', 5000, 100, 60_000, 'a request not answered within this long is a hang (a failure); 2 x DB_TIMEOUT_MS + 1 s'),
    retryForS: int('--retry-for', 'CHAOS_RETRY_FOR_S', 30, 1, 600, 'a valid order refused (503) or unanswered is sent again with its Idempotency-Key for this long, then given up (a failure)'),
    zones: int('--zones', 'CHAOS_ZONES', 6, 1, 99, 'bench zones, one merchant and its riders each'),
    ridersPerZone: int('--riders-per-zone', 'CHAOS_RIDERS_PER_ZONE', 20, 1, 1000, "riders per zone (their capacity is sized for the run's orders)"),
    logLevel: text('--log-level', 'CHAOS_LOG_LEVEL', 'warn', "the fleet's LOG_LEVEL"),
  },
);

const s = settings.values;
const profile = s.quick ? { rate: 10, faultSeconds: 3, calmSeconds: 1, settleBoundS: 45 } : { rate: 40, faultSeconds: 24, calmSeconds: 8, settleBoundS: 180 };

/** The settings in effect: each 0 replaced by its profile's value. */
export const chaos = {
  ...s,
  rate: s.rate || profile.rate,
  faultSeconds: s.faultSeconds || profile.faultSeconds,
  calmSeconds: s.calmSeconds || profile.calmSeconds,
  settleBoundS: s.settleBoundS || profile.settleBoundS,
};
export type ChaosSettings = typeof chaos;

/**
 * Courier settings the fleet runs with unless the environment sets them: a killed worker's jobs
 * are taken over after JOB_LOCK_MS, and what Redis lost is put back by the reconciler after
 * RECONCILE_*_AFTER_MS; at Courier's defaults (30 s, 60 s) each scenario would wait minutes for
 * what these show in seconds. Printed with the results.
 */
export const CHAOS_FLEET_SETTINGS: Readonly<Record<string, string>> = {
  JOB_LOCK_MS: '5000',
  WORKER_WATCHDOG_MS: '5000',
  COMPENSATE_CRON: '*/2 * * * * *',
  RECONCILE_CRON: '* * * * * *',
  RECONCILE_CREATED_AFTER_MS: '2000',
  RECONCILE_STUCK_AFTER_MS: '3000',
  RECONCILE_NOTIFY_AFTER_MS: '3000',
  RETRY_BASE_MS: '1000',
  RETRY_MAX_MS: '5000',
  NOTIFY_BREAKER_RESET_MS: '2000',
  REDIS_TIMEOUT_MS: '500',
  WARMUP_CRON: '',
};

/** The fleet's settings: the environment's where it sets one, else the chaos run's. */
export function fleetSettings(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(CHAOS_FLEET_SETTINGS).map(([k, v]) => [k, env[k] ?? v]));
}
