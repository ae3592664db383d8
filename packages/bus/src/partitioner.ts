/**
 * Kafka's default partitioner: murmur2 (the Java client's `Utils.murmur2`, seed 0x9747b28c) over the key's
 * UTF-8 bytes, made positive with `& 0x7fffffff`, modulo the partition count. The PostgreSQL bus uses the same
 * function as kafkajs's `DefaultPartitioner`, so a key lands in the same partition number on either bus.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i += 1) {
    const i4 = i * 4;
    let k =
      ((data[i4] as number) & 0xff) |
      (((data[i4 + 1] as number) & 0xff) << 8) |
      (((data[i4 + 2] as number) & 0xff) << 16) |
      (((data[i4 + 3] as number) & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= ((data[tail + 2] as number) & 0xff) << 16;
  if (rest >= 2) h ^= ((data[tail + 1] as number) & 0xff) << 8;
  if (rest >= 1) {
    h ^= (data[tail] as number) & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

const encoder = new TextEncoder();

/** The partition of `key` in a topic of `partitions` partitions. */
export function partitionFor(key: string, partitions: number): number {
  const hash = isAscii(key) ? murmur2Ascii(key) : murmur2(encoder.encode(key));
  return (hash & 0x7fffffff) % partitions;
}

function isAscii(key: string): boolean {
  for (let i = 0; i < key.length; i += 1) if (key.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * `murmur2` of an ASCII string's bytes (its UTF-8 is its char codes), read straight from the string: keys
 * (visitor ids) are ASCII, and encoding each into a fresh Uint8Array was a visible share of a batch publish.
 */
function murmur2Ascii(key: string): number {
  const m = 0x5bd1e995;
  const length = key.length;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i += 1) {
    const i4 = i * 4;
    let k =
      key.charCodeAt(i4) |
      (key.charCodeAt(i4 + 1) << 8) |
      (key.charCodeAt(i4 + 2) << 16) |
      (key.charCodeAt(i4 + 3) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= key.charCodeAt(tail + 2) << 16;
  if (rest >= 2) h ^= key.charCodeAt(tail + 1) << 8;
  if (rest >= 1) {
    h ^= key.charCodeAt(tail);
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
