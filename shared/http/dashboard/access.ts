import { createHash, timingSafeEqual } from 'node:crypto';
import type { Queue } from 'bullmq';
import { ApiError } from '../../errors/index.ts';

/**
 * Who may do what on the queue dashboard. Two roles, each with its own password: a viewer sees
 * everything (masked) and changes nothing; an operator also retries and removes failed jobs and
 * promotes delayed ones. Nobody adds, empties, pauses, obliterates or edits from the dashboard:
 * the batches are the rows' outbox, and those are operations for the CLI, on purpose.
 */
export type DashboardRole = 'operator' | 'viewer';

export interface DashboardPasswords {
  readonly operator: string;
  readonly viewer: string;
}

/** The user name selects the role; `admin` is the operator's older name (DASHBOARD_PASSWORD). */
const USERS: Readonly<Record<string, DashboardRole>> = { operator: 'operator', admin: 'operator', viewer: 'viewer' };

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The role these basic-auth credentials sign in as, or undefined. */
export function roleOf(user: string, password: string, passwords: DashboardPasswords): DashboardRole | undefined {
  const role = Object.hasOwn(USERS, user) ? USERS[user] : undefined;
  const expected = role ? passwords[role] : '';
  // Compared even for an unknown user or a role without a password: every refusal costs the same.
  const matches = sameSecret(password, expected);
  return role !== undefined && expected !== '' && matches ? role : undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method);
}

/**
 * A change must come from the dashboard's own page: its Origin (or, without one, its Referer)
 * names the host the request was sent to. Browsers attach basic-auth credentials to cross-site
 * requests by themselves, so without this another site could make a signed-in operator's browser
 * retry or remove jobs. A request with neither header is refused too (a script sends
 * `Origin: http://<host>` on purpose).
 */
export function sameOrigin(headers: { readonly origin?: string | undefined; readonly referer?: string | undefined; readonly host?: string | undefined }): boolean {
  const source = headers.origin ?? headers.referer;
  if (!source || !headers.host) return false;
  try {
    const from = new URL(source);
    if (from.protocol !== 'http:' && from.protocol !== 'https:') return false;
    // The Host header read as a URL of the same scheme, so a default port written out still matches.
    return from.host === new URL(`${from.protocol}//${headers.host}`).host;
  } catch {
    return false;
  }
}

/** A bull-board API route, as the dashboard plugin sees it: method, pattern below the dashboard path, params. */
export interface DashboardAction {
  readonly method: string;
  readonly route: string;
  readonly params: Readonly<Record<string, string | undefined>>;
}

/** The job's state, for the actions allowed on failed jobs only. */
export type JobStateOf = (queueName: string, jobId: string) => Promise<string>;

/**
 * Throws the ApiError that refuses a changing action to this role, or returns when it is allowed.
 * An operator may: retry a failed job or every failed job of a queue, promote a delayed job or
 * every delayed job of a queue, remove a failed job or every failed job of a queue.
 */
export async function checkAction(role: DashboardRole, action: DashboardAction, stateOf: JobStateOf): Promise<void> {
  if (isSafeMethod(action.method)) return;
  if (role === 'viewer') throw new ApiError('DASHBOARD_READ_ONLY');
  const { queueName = '', jobId = '', queueStatus } = action.params;
  const failedOnly = async () => {
    const state = await stateOf(queueName, jobId);
    if (state !== 'failed') throw new ApiError('DASHBOARD_ACTION_FORBIDDEN', `Only a failed job may be retried or removed here; job ${jobId} is ${state}`);
  };
  if (action.method === 'PUT') {
    switch (action.route) {
      case '/api/queues/:queueName/promote':
      case '/api/queues/:queueName/:jobId/promote':
        return;
      case '/api/queues/:queueName/retry/:queueStatus':
      case '/api/queues/:queueName/clean/:queueStatus':
        if (queueStatus === 'failed') return;
        throw new ApiError('DASHBOARD_ACTION_FORBIDDEN', `Only failed jobs may be retried or removed in bulk, not ${queueStatus ?? 'these'}`);
      case '/api/queues/:queueName/:jobId/retry':
      case '/api/queues/:queueName/:jobId/clean':
        return failedOnly();
    }
  }
  throw new ApiError('DASHBOARD_ACTION_FORBIDDEN');
}

/** Job states from the queues the dashboard shows ('unknown' for a job or queue it does not know). */
export function jobStatesFrom(queues: readonly Queue[]): JobStateOf {
  const byName = new Map(queues.map((queue) => [queue.name, queue]));
  return async (queueName, jobId) => {
    const queue = byName.get(queueName);
    return queue ? await queue.getJobState(jobId) : 'unknown';
  };
}
