import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../shared/config.ts';

describe('loadConfig', () => {
  it('has localhost defaults from the public contract', () => {
    const config = loadConfig({});
    expect(config.mysqlUrl).toBe('mysql://root@127.0.0.1:3306/courier');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.port).toBe(3000);
    expect(config.queuePrefix).toBe('{courier}');
  });

  it('is frozen', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['MYSQL_URL', 'not a url'],
    ['MYSQL_URL', 'postgres://127.0.0.1/courier'],
    ['MYSQL_URL', 'mysql://127.0.0.1:3306'],
    ['REDIS_URL', 'http://127.0.0.1'],
    ['LOG_LEVEL', 'loud'],
    ['QUEUE_PREFIX', 'courier'],
    ['NODE_ID', '64'],
    ['DB_TIMEOUT_MS', '1.5'],
  ])('%s=%s stops with an error naming the variable', (name, value) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(name);
    expect((caught as ConfigError).message).toContain(name);
  });
});

describe("the web's edge settings", () => {
  it('have their defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ rateLimitPerSecond: 1000, rateLimitTimeoutMs: 250, httpMaxInFlight: 2048, intakeMaxPending: 1024, requestTimeoutMs: 10_000 });
  });

  it('REQUEST_TIMEOUT_MS must outlast the bounds inside a request; its default follows them', () => {
    expect(loadConfig({ DB_TIMEOUT_MS: '10000' }).requestTimeoutMs).toBe(2 * 10_000 + 2000 + 1000);
    expect(loadConfig({ REQUEST_TIMEOUT_MS: '6001' }).requestTimeoutMs).toBe(6001);
    let caught: unknown;
    try {
      loadConfig({ REQUEST_TIMEOUT_MS: '6000' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe('REQUEST_TIMEOUT_MS');
    expect((caught as ConfigError).message).toContain('must be longer than 2 x DB_TIMEOUT_MS + LOCK_WAIT_MS (6000 ms)');
  });

  it.each([
    ['RATE_LIMIT_PER_SECOND', '0'],
    ['RATE_LIMIT_PER_SECOND', '1000001'],
    ['RATE_LIMIT_TIMEOUT_MS', 'fast'],
    ['HTTP_MAX_IN_FLIGHT', '0'],
    ['INTAKE_MAX_PENDING', '-1'],
  ])('%s=%s stops with an error naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
