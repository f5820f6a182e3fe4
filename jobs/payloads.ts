import { UnrecoverableError } from 'bullmq';
import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { NOTIFICATION_KINDS } from '../shared/notifications/kinds.ts';
import { BATCH_NAME } from '../shared/queues/job-ids.ts';

/** Why a cache warm-up runs: a web process started, a scheduler tick, an operator's command. */
export const WARM_UP_REASONS = ['start', 'cron', 'cli'] as const;
export type WarmUpReason = (typeof WARM_UP_REASONS)[number];

/** Who asked for a compensation or reconciliation run: a scheduler tick or an operator. */
export const MAINTENANCE_REASONS = ['cron', 'cli'] as const;
export type MaintenanceReason = (typeof MAINTENANCE_REASONS)[number];

/** Orders (or notifications) one batch job may carry: an intake batch, a zone's dispatch batch, a compensation batch. */
export const MAX_BATCH = 10_000;

const OrderId = Type.String({ pattern: '^[1-9][0-9]{0,18}$' });
const Kind = Type.Enum(NOTIFICATION_KINDS);
const Reason = <const R extends readonly string[]>(reasons: R) => Type.Enum(reasons);
const strict = { additionalProperties: false } as const;
/** A batch's own name, when its producer gives it one: the job id follows from it (`price-<batch>`, `notify-<batch>`). */
const Batch = Type.Optional(Type.String({ pattern: BATCH_NAME.source }));

/**
 * The one map of job names to payload schemas. A queue is a public interface: producers check a
 * payload before adding it, workers before running it, and both type against it.
 */
export const PAYLOAD_SCHEMAS = {
  /** Price a batch of CREATED orders. `attempt`: 0 from the intake, n for the n-th re-drive of its orders; `batch`: its name, if its producer gave it one. */
  'orders.price': Type.Object(
    { orderIds: Type.Array(OrderId, { minItems: 1, maxItems: MAX_BATCH }), attempt: Type.Integer({ minimum: 0, maximum: 1000 }), batch: Batch },
    strict,
  ),
  /** Match a zone's PRICED orders to free riders, batch after batch. `window`: the dispatch window it was booked for (ms). */
  'dispatch.zone': Type.Object({ zoneId: Type.String({ minLength: 1, maxLength: 32 }), window: Type.Optional(Type.Integer({ minimum: 0 })) }, strict),
  /** Send a batch of notifications, each once. */
  'notify.batch': Type.Object({ notifications: Type.Array(Type.Object({ orderId: OrderId, kind: Kind }, strict), { minItems: 1, maxItems: MAX_BATCH }), batch: Batch }, strict),
  /** Preload active orders, merchants and rider positions into Redis. `at`: the slot it was asked for (ms; default: when added). */
  'cache.warm-up': Type.Object({ reason: Reason(WARM_UP_REASONS), at: Type.Optional(Type.Integer({ minimum: 0 })) }, strict),
  /** Re-drive orders due in PRICING_FAILED / DISPATCH_FAILED, or escalate them. `at`: the tick's slot (ms). */
  'orders.compensate': Type.Object({ reason: Reason(MAINTENANCE_REASONS), at: Type.Optional(Type.Integer({ minimum: 0 })) }, strict),
  /** Compare MySQL with the queues and put back what Redis lost. `at`: the tick's slot (ms). */
  'orders.reconcile': Type.Object({ reason: Reason(MAINTENANCE_REASONS), at: Type.Optional(Type.Integer({ minimum: 0 })) }, strict),
  /** The per-order price job of the pipeline before batches (`order-<id>`): still run, as a batch of one, for a Redis that holds some. */
  'order.price': Type.Object({ orderId: OrderId }, strict),
  /** The per-notification job of the pipeline before batches (`notify-<id>-<kind>`): still run, as a batch of one. */
  'notify.send': Type.Object({ orderId: OrderId, kind: Kind }, strict),
} satisfies Record<string, TSchema>;

export type JobName = keyof typeof PAYLOAD_SCHEMAS;
export type JobPayloads = { [N in JobName]: Static<(typeof PAYLOAD_SCHEMAS)[N]> };

const CHECKERS = Object.fromEntries(Object.entries(PAYLOAD_SCHEMAS).map(([name, schema]) => [name, Compile(schema)])) as Record<
  JobName,
  ReturnType<typeof Compile>
>;

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(PAYLOAD_SCHEMAS, name);
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
export function parsePayload<N extends JobName>(name: N, data: unknown): JobPayloads[N] {
  const problem = payloadProblem(name, data);
  if (problem) throw new UnrecoverableError(problem);
  return data as JobPayloads[N];
}
