import { UnrecoverableError } from 'bullmq';
import { Type, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { MAINTENANCE_REASONS, NOTIFICATION_KINDS, WARM_UP_REASONS, type JobName, type JobPayloads } from './payloads.ts';

const OrderId = Type.String({ pattern: '^[1-9][0-9]{0,18}$' });

/** Run-time schemas of JobPayloads: producers check before adding, workers check before running. */
const SCHEMAS = {
  'order.price': Type.Object({ orderId: OrderId }, { additionalProperties: false }),
  'dispatch.zone': Type.Object({ zoneId: Type.String({ minLength: 1, maxLength: 32 }) }, { additionalProperties: false }),
  'notify.send': Type.Object(
    { orderId: OrderId, kind: Type.Union(NOTIFICATION_KINDS.map((kind) => Type.Literal(kind))) },
    { additionalProperties: false },
  ),
  'cache.warm-up': Type.Object(
    { reason: Type.Union(WARM_UP_REASONS.map((reason) => Type.Literal(reason))) },
    { additionalProperties: false },
  ),
  'orders.compensate': Type.Object(
    { reason: Type.Union(MAINTENANCE_REASONS.map((reason) => Type.Literal(reason))) },
    { additionalProperties: false },
  ),
  'orders.reconcile': Type.Object(
    { reason: Type.Union(MAINTENANCE_REASONS.map((reason) => Type.Literal(reason))) },
    { additionalProperties: false },
  ),
} satisfies Record<JobName, TSchema>;

const CHECKERS = Object.fromEntries(Object.entries(SCHEMAS).map(([name, schema]) => [name, Compile(schema)])) as Record<
  JobName,
  ReturnType<typeof Compile>
>;

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(SCHEMAS, name);
}

/** What is wrong with a payload, or undefined when it matches its job's schema. */
export function payloadProblem(name: string, data: unknown): string | undefined {
  if (!isJobName(name)) return `unknown job name "${name}"`;
  const checker = CHECKERS[name];
  if (checker.Check(data)) return undefined;
  const first = [...checker.Errors(data)][0];
  return `malformed ${name} payload: ${first ? `${first.instancePath || '/'} ${first.message}` : 'does not match its schema'}`;
}

/**
 * The payload, typed, or an UnrecoverableError saying what is wrong: a malformed job from any
 * producer fails at once with its reason, and is never retried.
 */
export function parsePayload<N extends JobName>(name: N, data: unknown): JobPayloads[N];
export function parsePayload(name: string, data: unknown): never;
export function parsePayload(name: string, data: unknown): unknown {
  const problem = payloadProblem(name, data);
  if (problem) throw new UnrecoverableError(problem);
  return data;
}
