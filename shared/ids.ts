/**
 * 64-bit time-ordered ids, made by the app (never AUTO_INCREMENT), so rows can be split across
 * MySQL servers by the shard they carry:
 *
 *   0 | 41 bits: ms since 2024-01-01 | 6 bits: shard | 6 bits: node | 10 bits: sequence
 *
 * The top bit stays 0, so ids also fit a signed BIGINT. One node makes up to 1,024 ids per
 * millisecond; two processes given the same node id could collide, which the primary key
 * catches and the caller answers by taking a fresh id.
 */
export const ID_EPOCH_MS = Date.UTC(2024, 0, 1);
const SEQUENCE_BITS = 10n;
const NODE_BITS = 6n;
const SHARD_BITS = 6n;
const MAX_SEQUENCE = (1 << Number(SEQUENCE_BITS)) - 1;
const TIME_SHIFT = SEQUENCE_BITS + NODE_BITS + SHARD_BITS;
const SHARD_SHIFT = SEQUENCE_BITS + NODE_BITS;

export interface DecodedId {
  readonly timestampMs: number;
  readonly shard: number;
  readonly node: number;
  readonly sequence: number;
}

export class IdGenerator {
  private lastMs = -1;
  private sequence = 0;

  private readonly nodeId: number;
  private readonly now: () => number;

  constructor(
    nodeId: number,
    now: () => number = Date.now,
  ) {
    this.nodeId = nodeId;
    this.now = now;
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > 63) throw new RangeError(`nodeId must be 0-63, got ${nodeId}`);
  }

  /** A new id as a decimal string; shard is 0-63. */
  next(shard: number): string {
    let ms = this.now() - ID_EPOCH_MS;
    if (ms < this.lastMs) ms = this.lastMs; // the wall clock stepped back: keep ids increasing
    if (ms === this.lastMs) {
      this.sequence += 1;
      if (this.sequence > MAX_SEQUENCE) {
        // 1,024 ids in one millisecond: borrow the next millisecond rather than spin.
        ms = this.lastMs + 1;
        this.sequence = 0;
      }
    } else {
      this.sequence = 0;
    }
    this.lastMs = ms;
    const id =
      (BigInt(ms) << TIME_SHIFT) |
      (BigInt(shard & 63) << SHARD_SHIFT) |
      (BigInt(this.nodeId) << SEQUENCE_BITS) |
      BigInt(this.sequence);
    return id.toString();
  }
}

export function decodeId(id: string): DecodedId {
  const value = BigInt(id);
  return {
    timestampMs: Number(value >> TIME_SHIFT) + ID_EPOCH_MS,
    shard: Number((value >> SHARD_SHIFT) & 63n),
    node: Number((value >> SEQUENCE_BITS) & 63n),
    sequence: Number(value & BigInt(MAX_SEQUENCE)),
  };
}

/** The shard an entity's rows live on: a stable FNV-1a hash of its key. */
export function shardOf(key: string, shardCount: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shardCount;
}

const ID_DIGITS = /^[1-9][0-9]{0,18}$/;
const MAX_ID = String(2n ** 63n - 1n);

/** Ids arrive as decimal strings; this says whether one could be ours (1 to 2^63-1). */
export function isIdString(value: string): boolean {
  // Every read checks its id: 18 digits or fewer are always below 2^63, and 19 compare as text.
  return ID_DIGITS.test(value) && (value.length < 19 || value <= MAX_ID);
}

/** Orders id strings as the numbers they are (a shorter id is a smaller one), for taking row locks in key order. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
