import { BusError } from '../errors';
import { KAFKA_RECORD_OVERHEAD_BYTES } from '../message-size';
import type { PublishReceipt } from '../port';

/** One sealed record as kafkajs sends it. */
export interface SealedRecord {
  readonly key: string;
  readonly value: string;
  readonly partition: number;
  readonly headers?: Record<string, string>;
}

export function recordBytes(record: SealedRecord): number {
  let bytes = KAFKA_RECORD_OVERHEAD_BYTES + Buffer.byteLength(record.key) + Buffer.byteLength(record.value);
  for (const name in record.headers) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(record.headers[name] ?? '') + 8;
  }
  return bytes;
}

/**
 * Splits one publish into produce requests of at most `maxBytes` each, in order. kafkajs sends a whole
 * `send` as one record batch per partition and does not split it, and the broker refuses a batch over its
 * `message.max.bytes` (1 MiB by default) with a non-retriable MESSAGE_TOO_LARGE: a handler that publishes a
 * large batch of its input (the processor a fetch of raw events, the worker its retries) would then fail on
 * the same batch for ever and hold its partition. Sent one after another, each acknowledged before the next,
 * the chunks keep every key's order. A single record over the limit cannot be sent at all: refused with
 * `bus_invalid_message`, naming its size (never its content).
 */
export function chunkRecords(records: readonly SealedRecord[], maxBytes: number): SealedRecord[][] {
  const chunks: SealedRecord[][] = [];
  let current: SealedRecord[] = [];
  let currentBytes = 0;
  for (const record of records) {
    const bytes = recordBytes(record);
    if (bytes > maxBytes) {
      throw new BusError(
        'bus_invalid_message',
        `a message of ${bytes} bytes (sealed) is over the ${maxBytes}-byte limit of one produce request`,
      );
    }
    if (current.length > 0 && currentBytes + bytes > maxBytes) {
      chunks.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(record);
    currentBytes += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The receipts of a publish sent in chunks: per partition, the first chunk's base offset and every count. */
export function mergeReceipts(chunkReceipts: readonly (readonly PublishReceipt[])[]): PublishReceipt[] {
  const byPartition = new Map<string, PublishReceipt>();
  for (const receipts of chunkReceipts) {
    for (const receipt of receipts) {
      const id = `${receipt.topic}\u0000${receipt.partition}`;
      const first = byPartition.get(id);
      byPartition.set(id, first === undefined ? receipt : { ...first, count: first.count + receipt.count });
    }
  }
  return [...byPartition.values()];
}
