/**
 * The one place that makes an error safe to log or to store: a MySQL or knex error carries the
 * statement with its bound values (mysql2's `sql`, knex's compiled SQL prepended to `message`,
 * `bindings`) and the server's message often quotes a value (`Duplicate entry '<value>'`, `near
 * '<the rest of the statement>'`). An intake batch's statement holds the phone numbers and
 * addresses of every order in it. The logger's `err` serializer runs every logged error through
 * here (every process), so nothing logs those fields; code that stores an error's text elsewhere
 * (a row, a job) stores `safeErrorMessage(error)`.
 */
import { coerceError } from './coerce-error.ts';

/** What a database error keeps: enough to tell what went wrong, nothing of the data. */
const KEPT_FIELDS = ['code', 'errno', 'sqlState', 'fatal'] as const;

/** Names MySQL quotes in its messages that are schema, not data: they stay readable. */
const IDENTIFIER = /\b(for key|key|column|table|index|constraint|database|field|procedure|function|variable)\s+'([A-Za-z0-9_$.]{1,128})'/gi;

const MAX_DEPTH = 8;

/**
 * The text to store of whatever was thrown (an order's last_error, a ledger row's, a job's failed
 * reason): its message, with a database error's statement and quoted values withheld.
 */
export function safeErrorMessage(thrown: unknown): string {
  return (scrubError(coerceError(thrown)) as Error).message;
}

/** mysql2 and knex errors: they carry a SQL state, a server message or the statement. */
export function isDatabaseError(error: Error): boolean {
  const fields = error as { sqlState?: unknown; sqlMessage?: unknown; sql?: unknown; bindings?: unknown };
  return typeof fields.sqlState === 'string' || typeof fields.sqlMessage === 'string' || fields.sql !== undefined || fields.bindings !== undefined;
}

/**
 * The error (and its causes, and an AggregateError's errors) with every database error replaced by a
 * summary of its code, number, SQL state and message with the values withheld. Errors with nothing to
 * hide are returned as they are.
 */
export function scrubError<T>(thrown: T): T | Error {
  return scrub(thrown, 0) as T | Error;
}

function scrub(thrown: unknown, depth: number): unknown {
  if (!(thrown instanceof Error) || depth > MAX_DEPTH) return thrown;
  const cause = (thrown as { cause?: unknown }).cause;
  const safeCause = cause === undefined ? undefined : scrub(cause, depth + 1);
  if (isDatabaseError(thrown)) return summary(thrown, safeCause);
  const errors = thrown instanceof AggregateError ? (thrown.errors as unknown[]) : undefined;
  const safeErrors = errors?.map((inner) => scrub(inner, depth + 1));
  const changed = safeCause !== cause || (errors !== undefined && safeErrors!.some((inner, i) => inner !== errors[i]));
  if (!changed) return thrown;
  // A copy, so the caller's error (which code may still inspect) keeps its fields.
  const copy = Object.create(Object.getPrototypeOf(thrown) as object, Object.getOwnPropertyDescriptors(thrown)) as Error;
  // V8's stack accessor reads the original's own slot: copy the text itself.
  Object.defineProperty(copy, 'stack', { value: thrown.stack, enumerable: false, writable: true, configurable: true });
  if (cause !== undefined) Object.defineProperty(copy, 'cause', { value: safeCause, enumerable: false, writable: true, configurable: true });
  if (safeErrors) Object.defineProperty(copy, 'errors', { value: safeErrors, enumerable: false, writable: true, configurable: true });
  return copy;
}

function summary(error: Error, safeCause: unknown): Error {
  const message = safeDatabaseMessage(error);
  const safe = new Error(message, safeCause === undefined ? undefined : { cause: safeCause });
  safe.name = error.name;
  const stackFrames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  safe.stack = [`${error.name}: ${message}`, ...stackFrames].join('\n');
  const fields = error as unknown as Record<string, unknown>;
  for (const field of KEPT_FIELDS) {
    if (fields[field] !== undefined) (safe as unknown as Record<string, unknown>)[field] = fields[field];
  }
  return safe;
}

/** The server's message with every quoted value withheld; knex's statement prefix dropped. */
export function safeDatabaseMessage(error: Error): string {
  const { sqlMessage, sqlState, code } = error as { sqlMessage?: unknown; sqlState?: unknown; code?: unknown };
  // SIGNAL ... SET MESSAGE_TEXT (SQLSTATE class 45) is free text a trigger or procedure wrote.
  if (typeof sqlState === 'string' && sqlState.startsWith('45')) return `${String(code ?? 'ER_SIGNAL_EXCEPTION')}: user-defined error (its text withheld)`;
  let text: string;
  if (typeof sqlMessage === 'string') text = sqlMessage;
  else {
    // knex prepends the statement: "<sql with values> - <message>"; the driver's own part is last.
    const knexSeparator = error.message.lastIndexOf(' - ');
    text = knexSeparator >= 0 && (error as { sql?: unknown }).sql !== undefined ? error.message.slice(knexSeparator + 3) : error.message;
  }
  return withheldValues(text);
}

function withheldValues(text: string): string {
  const identifiers: string[] = [];
  const marked = text.replace(IDENTIFIER, (_whole, word: string, name: string) => {
    identifiers.push(`${word} '${name}'`);
    return `\u0000${identifiers.length - 1}\u0000`;
  });
  // Everything from the first quote to the last is data (or the statement after "near"); a value with
  // a quote of its own cannot split the span.
  const first = marked.indexOf("'");
  const last = marked.lastIndexOf("'");
  let safe = marked;
  if (first >= 0) safe = last > first ? `${marked.slice(0, first)}'?'${marked.slice(last + 1)}` : `${marked.slice(0, first)}'?'`;
  return safe.replace(/\u0000(\d+)\u0000/g, (_whole, index: string) => identifiers[Number(index)] ?? '');
}
