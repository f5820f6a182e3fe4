import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { devDashboard } from '../scripts/dev-dashboard.ts';
import { ConfigError, loadConfig } from '../shared/config.ts';
import { keepCompleted } from '../shared/queues/create-queue.ts';

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`${JSON.stringify(env)} was accepted`);
}

const scratch = mkdtempSync(join(tmpdir(), 'courier-dashboard-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the dashboard, retention and metrics settings', () => {
  it('default to a dashboard that is off, completed batches kept 200 / 1 h, and metrics on 127.0.0.1', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ dashboardOperatorPassword: '', dashboardViewerPassword: '', keepCompletedJobs: 200, keepCompletedSeconds: 3600, metricsHost: '127.0.0.1' });
    expect(keepCompleted(config)).toEqual({ count: 200, age: 3600 });
    expect(keepCompleted(loadConfig({ KEEP_COMPLETED_JOBS: '0' }))).toBe(true);
  });

  it('read DASHBOARD_PASSWORD as the operator password when DASHBOARD_OPERATOR_PASSWORD is unset', () => {
    expect(loadConfig({ DASHBOARD_PASSWORD: 'older-name-secret' }).dashboardOperatorPassword).toBe('older-name-secret');
    expect(loadConfig({ DASHBOARD_PASSWORD: 'same-secret-both', DASHBOARD_OPERATOR_PASSWORD: 'same-secret-both' }).dashboardOperatorPassword).toBe('same-secret-both');
    expect(loadConfig({ DASHBOARD_VIEWER_PASSWORD: 'viewer-only-secret' })).toMatchObject({ dashboardOperatorPassword: '', dashboardViewerPassword: 'viewer-only-secret' });
    expect(loadConfig({ METRICS_HOST: '::1' }).metricsHost).toBe('::1');
    expect(loadConfig({ METRICS_HOST: 'metrics.internal' }).metricsHost).toBe('metrics.internal');
  });

  it.each([
    [{ DASHBOARD_OPERATOR_PASSWORD: 'short' }, 'DASHBOARD_OPERATOR_PASSWORD', /at least 12 characters/],
    [{ DASHBOARD_VIEWER_PASSWORD: 'elevenchars' }, 'DASHBOARD_VIEWER_PASSWORD', /at least 12 characters/],
    [{ DASHBOARD_PASSWORD: 'bench' }, 'DASHBOARD_PASSWORD', /at least 12 characters/],
    [{ DASHBOARD_PASSWORD: 'one-long-secret', DASHBOARD_OPERATOR_PASSWORD: 'another-long-secret' }, 'DASHBOARD_PASSWORD', /not two different values/],
    [{ DASHBOARD_OPERATOR_PASSWORD: 'one-long-secret', DASHBOARD_VIEWER_PASSWORD: 'one-long-secret' }, 'DASHBOARD_VIEWER_PASSWORD', /must differ/],
    [{ METRICS_HOST: 'not a host' }, 'METRICS_HOST', /IP address or a host name/],
    [{ METRICS_HOST: 'http://127.0.0.1' }, 'METRICS_HOST', /IP address or a host name/],
    [{ KEEP_COMPLETED_JOBS: '-1' }, 'KEEP_COMPLETED_JOBS', /between 0 and 100000/],
    [{ KEEP_COMPLETED_JOBS: 'many' }, 'KEEP_COMPLETED_JOBS', /integer/],
    [{ KEEP_COMPLETED_SECONDS: '0' }, 'KEEP_COMPLETED_SECONDS', /between 1 and 604800/],
  ])('%j stops with an error naming %s', (env, variable, message) => {
    const error = refusal(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(message);
  });

  it('npm start makes the two passwords once, keeps them readable by their owner only, and leaves chosen ones alone', () => {
    const file = join(scratch, 'dashboard.json');
    const first = devDashboard({}, file);
    expect(first.env.DASHBOARD_OPERATOR_PASSWORD).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(first.env.DASHBOARD_VIEWER_PASSWORD).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(first.note).toContain(`operator / ${first.env.DASHBOARD_OPERATOR_PASSWORD}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ operator: first.env.DASHBOARD_OPERATOR_PASSWORD, viewer: first.env.DASHBOARD_VIEWER_PASSWORD });
    expect(devDashboard({}, file)).toEqual(first); // the same ones at the next start
    expect(loadConfig({ ...first.env })).toMatchObject({ dashboardOperatorPassword: first.env.DASHBOARD_OPERATOR_PASSWORD });
    expect(devDashboard({ DASHBOARD_VIEWER_PASSWORD: 'my-own-viewer-pw' }, file).env).toEqual({});
  });
});
