import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import basicAuth from '@fastify/basic-auth';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { ApiError } from '../errors/index.ts';
import { sendError } from './error-handler.ts';

export const DASHBOARD_PATH = '/admin/queues';
export const DASHBOARD_USER = 'admin';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * bull-board at /admin/queues: operators see, retry and clean the queues. With a password set it
 * asks for HTTP basic auth (user admin); without one it is open, for a newcomer's machine only.
 */
export async function registerDashboard(app: FastifyInstance, queues: readonly Queue[], opts: { password: string }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: queues.map((queue) => new BullMQAdapter(queue)), serverAdapter });
  await app.register(async (scope) => {
    if (opts.password) {
      await scope.register(basicAuth, {
        authenticate: { realm: 'Courier queues' },
        validate: async (user: string, password: string) => {
          if (user !== DASHBOARD_USER || !sameSecret(password, opts.password)) {
            return new ApiError('UNAUTHORIZED', 'The dashboard needs the admin user and DASHBOARD_PASSWORD');
          }
          return undefined;
        },
      });
      // Answered here, in our error format: bull-board's own error handler would otherwise word it.
      scope.addHook('onRequest', (request, reply, next) => {
        scope.basicAuth(request, reply, (error?: Error) => {
          if (!error) return next();
          sendError(reply, error instanceof ApiError ? error : new ApiError('UNAUTHORIZED', 'The dashboard needs the admin user and DASHBOARD_PASSWORD'));
        });
      });
    }
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}
