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
