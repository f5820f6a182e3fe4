import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/** One pino logger per process, JSON by default; `pretty` (for npm start) needs the dev dependency pino-pretty. */
export async function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>, name: string): Promise<Logger> {
  const options = { name, level: config.logLevel, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (config.logFormat === 'pretty') {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', sync: true }));
  }
  return pino(options);
}
