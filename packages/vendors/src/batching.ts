import type { PreparedEvent, VendorLimits } from './adapter';

/** Room left in every request for the envelope around the rows (tokens, test codes, client ids). */
export const ENVELOPE_RESERVE_BYTES = 4096;

/**
 * Cuts prepared events into requests: rows with equal `batchKey` only, at most `maxBatchSize` each, and a
 * body that stays under `maxBodyBytes` (rows plus separators plus the envelope reserve). Order is kept
 * within a key; keys come in the order of their first event. Indices refer to the input array.
 */
export function splitBatches(
  prepared: readonly Pick<PreparedEvent, 'bytes' | 'batchKey'>[],
  limits: Pick<VendorLimits, 'maxBatchSize' | 'maxBodyBytes'>,
): number[][] {
  const byKey = new Map<string, number[]>();
  prepared.forEach((entry, index) => {
    const group = byKey.get(entry.batchKey);
    if (group === undefined) byKey.set(entry.batchKey, [index]);
    else group.push(index);
  });
  const budget = limits.maxBodyBytes - ENVELOPE_RESERVE_BYTES;
  const batches: number[][] = [];
  for (const group of byKey.values()) {
    let current: number[] = [];
    let bytes = 0;
    for (const index of group) {
      const size = (prepared[index]?.bytes ?? 0) + 1;
      if (current.length > 0 && (current.length >= limits.maxBatchSize || bytes + size > budget)) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(index);
      bytes += size;
    }
    if (current.length > 0) batches.push(current);
  }
  return batches;
}
