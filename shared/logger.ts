import { pino, stdSerializers, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.ts';
import { scrubError } from './errors/scrub-error.ts';

export type { Logger };

/**
 * What never reaches a log line, whoever logs it: API keys (a request's Authorization header) and
 * the people an order reaches (its dropoff phone and address, as the API spells them and as the row
 * does), at the top of a line's object or one level down (`{ order: { dropoff } }`).
 */
export const REDACTED_PATHS: readonly string[] = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  '*.headers.authorization',
  'phone',
  'address',
  '*.phone',
  '*.address',
  'dropoff.phone',
  'dropoff.address',
  '*.dropoff.phone',
  '*.dropoff.address',
  'dropoff_phone',
  'dropoff_address',
  '*.dropoff_phone',
  '*.dropoff_address',
  '*[*].dropoff_phone',
  '*[*].dropoff_address',
  '*[*].dropoff.phone',
  '*[*].dropoff.address',
];

/**
 * The options every Courier logger is made with: the paths above redacted, and every logged error
 * (`err`, `error`) scrubbed of database statements and values first (shared/errors/scrub-error.ts).
 */
export function loggerOptions(config: Pick<Config, 'logLevel'>, name: string): LoggerOptions {
  const err = (value: unknown) => stdSerializers.err(scrubError(value) as Error);
  return {
    name,
    level: config.logLevel,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    serializers: { err, error: err },
  };
}

/** One pino logger per process, JSON by default; `pretty` (for npm start) needs the dev dependency pino-pretty. */
export async function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>, name: string): Promise<Logger> {
  const options = loggerOptions(config, name);
  if (config.logFormat === 'pretty') {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', sync: true }));
  }
  return pino(options);
}
