import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { type BusCrypto, segmentContext } from '@signal/bus';
import { createCryptoService, createKeyring } from '@signal/crypto';
import type { Queryable } from '@signal/store';
import { z } from 'zod';

/**
 * Reads what the embedded bus durably holds for one topic, straight from its tables (`bus_segments`: one
 * row per group commit, sealed with the v1 ciphertext bound to topic, partition and base offset). Both stored
 * forms are read (ADR 0010-binary-bus-segments): `payload` (binary ciphertext of the binary v2 records, or
 * of v3 runs with visitor batches compressed, ADR 0011-compressed-bus-runs; written since bus/0004) and
 * `records` (text ciphertext of JSON lines of `[key, value]` or
 * `[key, value, headers]`, written before). A test reads the stored form independently of the bus adapter —
 * this file has its own decoder of both — so it checks what is on disk, not what the adapter would hand
 * back. `rawSegments` are the stored bytes as they are, for asserting that no plaintext is in them.
 */
export interface StoredMessage {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly value: string;
}

const segmentRow = z.object({
  partition: z.number().int(),
  base_offset: z.string(),
  record_count: z.number().int().positive(),
  payload: z.instanceof(Uint8Array).nullable(),
  records: z.string().nullable(),
});

const record = z.union([
  z.tuple([z.string(), z.string()]),
  z.tuple([z.string(), z.string(), z.record(z.string(), z.string())]),
]);

/** A cursor over segment bytes (see packages/bus/src/postgres/segment.ts for the forms). */
function cursor(bytes: Buffer, start: number, where: string) {
  let pos = start;
  const varint = (): number => {
    let n = 0;
    for (let shift = 1; ; shift *= 128) {
      const byte = bytes[pos++];
      if (byte === undefined || shift > 128 ** 4) throw new Error(`segment ${where}: bad length`);
      n += (byte & 0x7f) * shift;
      if (byte < 0x80) return n;
    }
  };
  const str = (escaped: boolean): string => {
    const n = varint();
    if (pos + n > bytes.length) throw new Error(`segment ${where}: length past the end`);
    const text = bytes.toString('utf8', pos, pos + n);
    pos += n;
    return escaped ? z.string().parse(JSON.parse(text)) : text;
  };
  /** `count` v2 records: flags, key, value, then the headers (skipped). */
  const records = (count: number): [string, string][] => {
    const out: [string, string][] = [];
    for (let i = 0; i < count; i += 1) {
      const flags = varint();
      const escaped = flags % 2 === 1;
      out.push([str(escaped), str(escaped)]);
      for (let h = 0; h < Math.floor(flags / 2) * 2; h += 1) str(escaped);
    }
    return out;
  };
  return { varint, records, skip: (n: number) => (pos += n), at: () => pos };
}

/** The key and value of each record of a v2 segment, or of a v3 one (runs, some raw-deflated). */
function decodeBinary(bytes: Buffer, count: number, where: string): [string, string][] {
  if (bytes[0] === 0x02) {
    const c = cursor(bytes, 1, where);
    const out = c.records(count);
    if (c.at() !== bytes.length) throw new Error(`segment ${where}: record count differs`);
    return out;
  }
  if (bytes[0] !== 0x03) throw new Error(`segment ${where}: unknown format`);
  const c = cursor(bytes, 1, where);
  const out: [string, string][] = [];
  while (c.at() < bytes.length) {
    const n = c.varint();
    const mode = c.varint();
    if (mode === 0) {
      const length = c.varint();
      const run = cursor(bytes.subarray(0, c.at() + length), c.at(), where);
      out.push(...run.records(n));
      c.skip(length);
    } else if (mode === 1) {
      c.varint(); // raw length
      const length = c.varint();
      const raw = inflateRawSync(bytes.subarray(c.at(), c.at() + length));
      out.push(...cursor(raw, 0, where).records(n));
      c.skip(length);
    } else {
      throw new Error(`segment ${where}: unknown run form ${mode}`);
    }
  }
  if (out.length !== count) throw new Error(`segment ${where}: record count differs`);
  return out;
}

export async function readTopicMessages(
  db: Queryable,
  topic: string,
  crypto: BusCrypto,
): Promise<{ messages: StoredMessage[]; rawSegments: Buffer[] }> {
  const { rows } = await db.query(
    `SELECT partition, base_offset, record_count, payload, records FROM bus_segments
     WHERE topic = $1 ORDER BY partition, base_offset`,
    [topic],
  );
  const messages: StoredMessage[] = [];
  const rawSegments: Buffer[] = [];
  for (const raw of rows) {
    const segment = segmentRow.parse(raw);
    const where = { topic, partition: segment.partition, baseOffset: Number(segment.base_offset) };
    const name = `${topic}/${segment.partition}@${segment.base_offset}`;
    let records: [string, string][];
    if (segment.payload !== null) {
      rawSegments.push(Buffer.from(segment.payload));
      const plaintext = crypto.open(segment.payload, segmentContext(where));
      records = decodeBinary(plaintext, segment.record_count, name);
    } else {
      const text = z.string().parse(segment.records);
      rawSegments.push(Buffer.from(text, 'utf8'));
      const lines = crypto.openText(text, segmentContext(where)).toString('utf8').split('\n');
      if (lines.length !== segment.record_count) throw new Error(`segment ${name}: record count differs`);
      records = lines.map((line) => {
        const [key, value] = record.parse(JSON.parse(line));
        return [key, value];
      });
    }
    records.forEach(([key, value], index) => {
      messages.push({ partition: segment.partition, offset: where.baseOffset + index, key, value });
    });
  }
  return { messages, rawSegments };
}

/** The crypto of an all-in-one started without ENCRYPTION_KEY: the development key it generated into its data dir. */
export function developmentCrypto(dataDir: string): BusCrypto {
  const key = readFileSync(join(dataDir, 'development-encryption.key'), 'utf8').trim();
  return createCryptoService({ keyring: createKeyring({ current: Buffer.from(key, 'hex') }) });
}
