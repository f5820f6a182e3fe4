import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level } from 'pino';

type LogFn = (...args: unknown[]) => void;
/** Courier's loggers are pino's, which answer isLevelEnabled. */
type PinoLike = FastifyBaseLogger & { isLevelEnabled(level: string): boolean };

/**
 * A request's logger that becomes pino's child (with the request id) only when the request logs
 * something its level lets through. Fastify makes a child per request; pino's child() writes and
 * redacts its bindings each time, which cost more than a cached read's own work, and at info or
 * above a good request never logs (errors do, with their request id as before).
 */
class LazyRequestLogger {
  #child: PinoLike | undefined;
  readonly #parent: PinoLike;
  readonly #bindings: Bindings;
  readonly #opts: ChildLoggerOptions;

  constructor(parent: PinoLike, bindings: Bindings, opts: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#opts = opts;
  }

  get level(): string {
    return this.#child?.level ?? this.#opts.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  isLevelEnabled(level: string): boolean {
    return this.#child ? this.#child.isLevelEnabled(level) : this.#opts.level === undefined ? this.#parent.isLevelEnabled(level) : true;
  }

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, opts);
  }

  private log(level: Level, args: unknown[]): void {
    if (this.isLevelEnabled(level)) (this.real()[level] as LogFn)(...args);
  }

  private real(): PinoLike {
    this.#child ??= this.#parent.child(this.#bindings, this.#opts) as PinoLike;
    return this.#child;
  }
}

/** Fastify's childLoggerFactory: a lazy child per request. */
export function lazyRequestLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger as PinoLike, bindings, opts) as unknown as FastifyBaseLogger;
}
