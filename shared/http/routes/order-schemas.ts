import { Type } from 'typebox';
import { CreateOrderBody, IDEMPOTENCY_KEY_PATTERN, ItemSchema } from '../../orders/create-order-schema.ts';
import { ORDER_EVENT_TYPES } from '../../orders/state-machine.ts';
import { ORDER_STATUSES } from '../../orders/status.ts';
import { BEARER, COMMON_RESPONSE_HEADERS, RATE_LIMIT_HEADERS, REQUEST_ID_HEADER_SCHEMA, errorResponses } from '../api-schemas.ts';

/** The schemas of the order routes: what they take and every answer they give (for validation, serialization and /docs). */

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

const OrderId = Type.String({ description: 'An order id: a 64-bit number as a decimal string', examples: ['382636929890876416'] });
const Status = Type.Enum([...ORDER_STATUSES], { description: 'The order status (see the state machine in docs/pipeline.md)' });
const Timestamp = Type.String({ description: 'ISO 8601, UTC' });

export const OrderIdParams = Type.Object({ id: OrderId });

export const OrderView = Type.Object(
  {
    id: OrderId,
    status: Status,
    version: Type.Integer({ description: 'Goes up by one at each change; the ETag is "v<version>"' }),
    merchantId: Type.String(),
    riderId: Nullable(Type.String()),
    feeCents: Nullable(Type.Integer()),
    etaSeconds: Nullable(Type.Integer()),
    zoneId: Type.String(),
    pickup: Type.Object({ lat: Type.Number(), lng: Type.Number() }),
    dropoff: Type.Object({ lat: Type.Number(), lng: Type.Number(), address: Type.String(), phone: Type.String() }),
    // Stored as the JSON the client sent (validated then): typed unknown where it is read back.
    items: Type.Unsafe<unknown>(Type.Array(ItemSchema)),
    note: Nullable(Type.String()),
    attempts: Type.Integer({ description: 'Tries of the current step (pricing or dispatch) that failed' }),
    lastError: Nullable(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { description: 'An order as its client sees it' },
);

const RiderPosition = Type.Object({ riderId: Type.String(), lat: Type.Number(), lng: Type.Number(), updatedAt: Timestamp });
const Eta = Type.Object({ remainingSeconds: Type.Integer(), dispatchedAt: Timestamp });

export const TrackingView = Type.Object({
  order: OrderView,
  rider: Nullable(RiderPosition),
  eta: Nullable(Eta),
  missing: Type.Unsafe<readonly ('rider' | 'eta')[]>(
    Type.Array(Type.Enum(['rider', 'eta']), { description: 'Parts that did not answer within TRACKING_PART_TIMEOUT_MS' }),
  ),
});

export const OrderEventBody = Type.Object(
  { type: Type.Enum([...ORDER_EVENT_TYPES], { description: 'The event: picked_up, delivered or cancel' }) },
  { additionalProperties: false },
);

const ok = (description: string, headers: Record<string, unknown> = {}) => ({
  description,
  headers: { ...COMMON_RESPONSE_HEADERS, ...RATE_LIMIT_HEADERS, ...headers },
});

const API_ERRORS = [400, 401, 404, 429, 500, 503] as const;

export const CREATE_ORDER_SCHEMA = {
  tags: ['orders'],
  summary: 'Create an order',
  description:
    'Validates the order, commits it to MySQL and answers 202 once it is committed. The same Idempotency-Key with the same body ' +
    'answers the first answer again (Idempotent-Replayed: true); with another body, 422 IDEMPOTENCY_KEY_REUSED.',
  security: BEARER,
  headers: Type.Object({
    'idempotency-key': Type.String({
      pattern: IDEMPOTENCY_KEY_PATTERN.source,
      description: '1-255 printable ASCII characters, unique per order for this API key',
    }),
    'x-request-id': REQUEST_ID_HEADER_SCHEMA,
  }),
  body: CreateOrderBody,
  response: {
    202: Type.Object(
      { id: OrderId, status: Type.Literal('CREATED') },
      ok('Committed', { 'Idempotent-Replayed': { type: 'string', enum: ['true'], description: 'Present when this repeats the first answer to the key' } }),
    ),
    ...errorResponses([...API_ERRORS, 413, 422]),
  },
};

export const GET_ORDER_SCHEMA = {
  tags: ['orders'],
  summary: 'Read an order',
  description: 'Your own order (another client\'s is a 404). Answers carry ETag: "v<version>"; If-None-Match gets a 304.',
  security: BEARER,
  params: OrderIdParams,
  headers: Type.Object({ 'x-request-id': REQUEST_ID_HEADER_SCHEMA }),
  response: {
    200: Type.Object(OrderView.properties, ok('The order', { ETag: { type: 'string', description: '"v<version>"' } })),
    304: Type.Null({ description: 'Not modified: the If-None-Match tag is the current version' }),
    ...errorResponses(API_ERRORS),
  },
};

export const TRACK_ORDER_SCHEMA = {
  tags: ['orders'],
  summary: "Track an order: its rider's position and the ETA",
  description: 'The order with its rider and ETA, each fetched within TRACKING_PART_TIMEOUT_MS; a part that does not answer is left out and named in missing.',
  security: BEARER,
  params: OrderIdParams,
  headers: Type.Object({ 'x-request-id': REQUEST_ID_HEADER_SCHEMA }),
  response: {
    200: Type.Object(TrackingView.properties, ok('The tracking view')),
    ...errorResponses(API_ERRORS),
  },
};

export const ORDER_EVENT_SCHEMA = {
  tags: ['orders'],
  summary: 'Move an order on: picked_up, delivered or cancel',
  description: 'An event that does not apply to the order\'s status is a 409 ILLEGAL_TRANSITION and changes nothing.',
  security: BEARER,
  params: OrderIdParams,
  headers: Type.Object({ 'x-request-id': REQUEST_ID_HEADER_SCHEMA }),
  body: OrderEventBody,
  response: {
    200: Type.Object({ id: OrderId, status: Status, version: Type.Integer() }, ok('The order after the event')),
    ...errorResponses([...API_ERRORS, 409, 413]),
  },
};
