import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Queue } from 'bullmq';
import basicAuth from '@fastify/basic-auth';
import { ApiError } from '../errors/index.ts';
import type { Logger } from '../logger.ts';
import { checkAction, isSafeMethod, jobStatesFrom, roleOf, sameOrigin, type DashboardPasswords, type DashboardRole } from './dashboard/access.ts';
import { createBoard, type DescribeJob } from './dashboard/board.ts';
import { sendError } from './error-handler.ts';

export const DASHBOARD_PATH = '/admin/queues';
export type { DashboardPasswords, DashboardRole } from './dashboard/access.ts';
export type { DescribeJob } from './dashboard/board.ts';

export interface DashboardOptions {
  /** The operator's and the viewer's passwords; with neither, the dashboard is off. */
  readonly passwords: DashboardPasswords;
  /** What a job carried, for its title (from the table of job types). */
  readonly describeJob?: DescribeJob | undefined;
  readonly logger?: Logger;
}

const SIGN_IN = 'The dashboard needs basic auth: user operator or viewer, with its password';

/** Marks every queue read-only in a viewer's copy of the queue list, so the board offers no button that changes anything. */
function readOnlyQueues(payload: unknown): unknown {
  const body = payload as { queues?: unknown };
  if (!body || !Array.isArray(body.queues)) return payload;
  return { ...body, queues: body.queues.map((queue: object) => ({ ...queue, readOnlyMode: true, allowRetries: false, allowCompletedRetries: false })) };
}

/**
 * bull-board at /admin/queues, safe by default: without a password it is off (404), never open.
 * With one, it asks for HTTP basic auth; the user name chooses the role (operator, or viewer), the
 * password is compared in constant time. Every request that changes something must come from the
 * dashboard's own page (Origin/Referer, see sameOrigin) and be allowed to its role (checkAction);
 * refusals are answered in our error format. What it shows of jobs is masked (dashboard/board.ts).
 */
export async function registerDashboard(app: FastifyInstance, queues: readonly Queue[], opts: DashboardOptions): Promise<void> {
  const { passwords } = opts;
  if (!passwords.operator && !passwords.viewer) {
    opts.logger?.info(`the queue dashboard (${DASHBOARD_PATH}) is off: set DASHBOARD_OPERATOR_PASSWORD and/or DASHBOARD_VIEWER_PASSWORD`);
    const off = async (_request: FastifyRequest, reply: FastifyReply) => sendError(reply, new ApiError('DASHBOARD_DISABLED'));
    app.all(DASHBOARD_PATH, off);
    app.all(`${DASHBOARD_PATH}/*`, off);
    return;
  }

  const board = createBoard(queues, { basePath: DASHBOARD_PATH, describeJob: opts.describeJob });
  const stateOf = jobStatesFrom(queues);
  const roles = new WeakMap<FastifyRequest, DashboardRole>();
  await app.register(async (scope) => {
    await scope.register(basicAuth, {
      authenticate: { realm: 'Courier queues' },
      validate: async (user: string, password: string, request: FastifyRequest) => {
        const role = roleOf(user, password, passwords);
        if (!role) return new ApiError('UNAUTHORIZED', SIGN_IN);
        roles.set(request, role);
        return undefined;
      },
    });
    // Answered here, in our error format: bull-board's own error handler would otherwise word it.
    scope.addHook('onRequest', (request, reply, next) => {
      scope.basicAuth(request, reply, (error?: Error) => {
        if (!error) return next();
        sendError(reply, error instanceof ApiError ? error : new ApiError('UNAUTHORIZED', SIGN_IN));
      });
    });
    scope.addHook('onRequest', async (request, reply) => {
      if (isSafeMethod(request.method)) return;
      if (!sameOrigin(request.headers)) return sendError(reply, new ApiError('CROSS_ORIGIN_REFUSED'));
      const route = (request.routeOptions.url ?? '').slice(DASHBOARD_PATH.length);
      try {
        await checkAction(roles.get(request) ?? 'viewer', { method: request.method, route, params: request.params as Record<string, string> }, stateOf);
      } catch (error) {
        if (error instanceof ApiError) return sendError(reply, error);
        throw error;
      }
    });
    scope.addHook('preSerialization', async (request, _reply, payload) => {
      if (roles.get(request) !== 'viewer' || request.routeOptions.url !== `${DASHBOARD_PATH}/api/queues`) return payload;
      return readOnlyQueues(payload);
    });
    await scope.register(board.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}
