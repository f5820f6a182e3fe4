import type { FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { ERROR_CODES, retryAfterOf, type ErrorCode } from '../errors/index.ts';

export const DOCS_PATH = '/docs';

/** The table of error codes in the document's description, from the one registry. */
function errorTable(): string {
  const rows = (Object.keys(ERROR_CODES) as ErrorCode[])
    .map((code) => ({ code, ...ERROR_CODES[code] }))
    .sort((a, b) => a.status - b.status || a.code.localeCompare(b.code))
    .map(({ code, status, message }) => `| ${status} | \`${code}\` | ${message}${retryAfterOf(code) ? ' (with Retry-After)' : ''} |`);
  return ['| status | code | meaning |', '|---|---|---|', ...rows].join('\n');
}

const DESCRIPTION = `Courier's intake and order API. Send your API key as \`Authorization: Bearer <key>\`.

Every answer carries \`X-Request-Id\` (yours, if you sent a good one). Each API key has a rate, in requests per
second over all its calls (reads too): past it, \`429 RATE_LIMITED\` with \`Retry-After\`. A busy instance answers
\`503 OVERLOADED\` with \`Retry-After\` at once: retry then, with the same \`Idempotency-Key\`.

Every error is \`{ "code", "message" }\` (validation errors add \`field\`: \`dropoff.lat\`, \`items[0].qty\`, \`merchantId\`):

${errorTable()}
`;

/**
 * The OpenAPI 3 document, written from the route schemas (@fastify/swagger; each route declares
 * what it takes and every answer it gives), at /docs/json, with Swagger UI at /docs. Registered
 * before the routes it describes; routes without a tag (the dashboard) are left out.
 */
export async function registerApiDocs(app: FastifyInstance, version: string): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Courier API', version, description: DESCRIPTION },
      tags: [
        { name: 'orders', description: 'Create, read, track and move on orders (API key)' },
        { name: 'operations', description: 'Probes and metrics (no key)' },
      ],
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from `npm run cli -- client:create`' } } },
    },
    hideUntagged: true,
  });
  await app.register(fastifySwaggerUi, { routePrefix: DOCS_PATH, staticCSP: true });
}
