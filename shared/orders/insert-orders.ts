import type { Db } from '../db.ts';
import type { CreateOrderBody } from './create-order-schema.ts';
import { DbUnavailableError, coerceError, isConnectionError } from '../errors/index.ts';
import { withRawConnection } from '../raw-connection.ts';
import { withDeadline, DeadlineExceeded } from '../with-deadline.ts';

/** One order row as the intake writes it (snake_case, ready for INSERT). */
export interface NewOrderRow {
  id: string;
  client_id: string;
  idempotency_key: string;
  request_hash: string;
  merchant_id: string;
  zone_id: string;
  status: 'CREATED';
  version: 1;
  pickup_lat: number;
  pickup_lng: number;
  dropoff_lat: number;
  dropoff_lng: number;
  dropoff_address: string;
  dropoff_phone: string;
  items: string;
  note: string | null;
  /** The price batch that carries the order (set when its batch is written). */
  price_job_id: string | null;
  /** The id of the request that created the order (X-Request-Id), for following it across processes. */
  request_id: string | null;
}

/** The row of a new order: the request's content, with the pickup taken from its merchant. */
export function newOrderRow(fields: {
  id: string;
  clientId: string;
  idempotencyKey: string;
  requestHash: string;
  merchant: { id: string; zoneId: string; lat: number; lng: number };
  body: CreateOrderBody;
  requestId?: string | null;
}): NewOrderRow {
  const { body, merchant } = fields;
  return {
    id: fields.id,
    client_id: fields.clientId,
    idempotency_key: fields.idempotencyKey,
    request_hash: fields.requestHash,
    merchant_id: merchant.id,
    zone_id: merchant.zoneId,
    status: 'CREATED',
    version: 1,
    pickup_lat: merchant.lat,
    pickup_lng: merchant.lng,
    dropoff_lat: body.dropoff.lat,
    dropoff_lng: body.dropoff.lng,
    dropoff_address: body.dropoff.address,
    dropoff_phone: body.dropoff.phone,
    items: JSON.stringify(body.items),
    note: body.note ?? null,
    price_job_id: null,
    request_id: fields.requestId ?? null,
  };
}

export type InsertOutcome =
  | { readonly kind: 'created'; readonly id: string }
  | { readonly kind: 'existing'; readonly id: string; readonly requestHash: string }
  | { readonly kind: 'failed'; readonly error: Error };

export interface InsertOptions {
  /** Bound on the whole write; past it the batch is abandoned and answered DB_UNAVAILABLE. */
  readonly timeoutMs: number;
  /** A fresh id for a row whose id collided with another row's primary key. */
  readonly newId: (row: NewOrderRow) => string;
  /** Told of a write given up on at its deadline; it still settles (by rolling back) later. */
  readonly onAbandoned?: (settling: Promise<unknown>) => void;
  /** The price batch job every row names (orders.price_job_id, and its CREATED event's job). */
  readonly priceJobId: string;
}

const ER_DUP_ENTRY = 1062;

/**
 * Commits a batch of new orders with one multi-row INSERT (plus one for their CREATED events) in
 * one transaction, every row naming the price batch job that will carry it (the rows are the
 * outbox the reconciler reads). If that fails on a row's data (a repeated Idempotency-Key, a
 * colliding id), each row is retried alone, so one bad row never fails its neighbours; a repeated
 * key resolves to the order that holds it. If MySQL is unreachable or too slow, every row fails
 * with DbUnavailableError and the transaction is rolled back: nothing is half-written.
 */
export async function insertOrders(db: Db, batch: readonly NewOrderRow[], opts: InsertOptions): Promise<InsertOutcome[]> {
  const rows = batch.map((row) => ({ ...row, price_job_id: opts.priceJobId }));
  try {
    await writeRows(db, rows, opts);
    return rows.map((row) => ({ kind: 'created', id: row.id }));
  } catch (thrown) {
    const error = coerceError(thrown);
    if (isUnavailable(error)) throw new DbUnavailableError(error);
    if (rows.length === 1 && !isDuplicate(error)) return [{ kind: 'failed', error }];
  }
  return Promise.all(rows.map((row) => insertOne(db, row, opts)));
}

async function insertOne(db: Db, row: NewOrderRow, opts: InsertOptions): Promise<InsertOutcome> {
  // A handful of tries: a colliding id gets a new one; a key whose holder rolled back is free again.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeRows(db, [row], opts);
      return { kind: 'created', id: row.id };
    } catch (thrown) {
      const error = coerceError(thrown);
      if (isUnavailable(error)) return { kind: 'failed', error: new DbUnavailableError(error) };
      if (!isDuplicate(error)) return { kind: 'failed', error };
      if (/for key '(?:orders\.)?PRIMARY'/i.test(error.message)) {
        row = { ...row, id: opts.newId(row) };
        continue;
      }
      let holder: { id: unknown; request_hash: unknown } | undefined;
      try {
        holder = await withDeadline(
          db('orders')
            .select('id', 'request_hash')
            .where({ client_id: row.client_id, idempotency_key: row.idempotency_key })
            .first(),
          opts.timeoutMs,
        );
      } catch (lookupError) {
        const cause = coerceError(lookupError);
        return { kind: 'failed', error: isUnavailable(cause) ? new DbUnavailableError(cause) : cause };
      }
      if (holder) return { kind: 'existing', id: String(holder.id), requestHash: String(holder.request_hash) };
    }
  }
  return { kind: 'failed', error: new Error(`could not insert order for key ${row.idempotency_key} after 3 tries`) };
}

const ORDER_COLUMNS = [
  'id', 'client_id', 'idempotency_key', 'request_hash', 'merchant_id', 'zone_id', 'status', 'version',
  'pickup_lat', 'pickup_lng', 'dropoff_lat', 'dropoff_lng', 'dropoff_address', 'dropoff_phone', 'items', 'note', 'price_job_id',
  'request_id',
] as const satisfies readonly (keyof NewOrderRow)[];

const ORDER_ROW_PLACEHOLDER = `(${ORDER_COLUMNS.map(() => '?').join(',')})`;
const INSERT_ORDERS = `INSERT INTO orders (${ORDER_COLUMNS.join(',')}) VALUES `;
const INSERT_CREATED_EVENTS = 'INSERT INTO order_events (order_id, to_status, version, actor, job_id) VALUES ';
const CREATED_EVENT_PLACEHOLDER = "(?,'CREATED',1,'intake',?)";

function repeatJoined(unit: string, times: number): string {
  return new Array<string>(times).fill(unit).join(',');
}

/**
 * One transaction on the intake's own pool (it allows multiple statements): the orders and their
 * CREATED events, each one multi-row INSERT. Before it
 * commits it checks whether the caller has given up on it; a batch the client was told failed
 * (503) is rolled back rather than committed behind its back.
 */
async function writeRows(db: Db, rows: readonly NewOrderRow[], opts: InsertOptions): Promise<void> {
  const { timeoutMs } = opts;
  const abandon = new AbortController();
  const values: unknown[] = [];
  for (const row of rows) for (const column of ORDER_COLUMNS) values.push(row[column]);
  const work = withRawConnection(db, async (conn) => {
    // One round trip to write, one to commit: under load each round trip waits a turn of a busy
    // event loop, so they, not MySQL, bound the intake's latency.
    const ordersSql = INSERT_ORDERS + repeatJoined(ORDER_ROW_PLACEHOLDER, rows.length);
    const eventsSql = INSERT_CREATED_EVENTS + repeatJoined(CREATED_EVENT_PLACEHOLDER, rows.length);
    try {
      await conn.query(`START TRANSACTION; ${ordersSql}; ${eventsSql}`, [...values, ...rows.flatMap((row) => [row.id, row.price_job_id])]);
      if (abandon.signal.aborted) throw new DeadlineExceeded(timeoutMs);
      await conn.query('COMMIT');
    } catch (error) {
      await conn.query('ROLLBACK').catch(() => undefined); // a broken connection rolls back on its own
      throw error;
    }
  });
  try {
    await withDeadline(work, timeoutMs);
  } catch (error) {
    abandon.abort();
    opts.onAbandoned?.(work.catch(() => undefined)); // it rolls back when MySQL answers again
    throw error;
  }
}

function isDuplicate(error: Error): boolean {
  return (error as { errno?: number }).errno === ER_DUP_ENTRY;
}

function isUnavailable(error: Error): boolean {
  return error instanceof DeadlineExceeded || error instanceof DbUnavailableError || isConnectionError(error);
}
