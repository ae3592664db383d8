import { type BusCrypto, segmentContext } from '@signal/bus';
import type { Queryable } from '@signal/store';
import { z } from 'zod';

/**
 * Reads what the embedded bus durably holds for one topic, straight from its tables (`bus_segments`: one
 * row per group commit, sealed with the v1 ciphertext bound to topic, partition and base offset). Both stored
 * forms are read (ADR 0010-binary-bus-segments): `payload` (binary ciphertext of the binary v2 records,
 * written since bus/0004) and `records` (text ciphertext of JSON lines of `[key, value]` or
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

/** The key and value of each record of a v2 segment (see packages/bus/src/postgres/segment.ts). */
function decodeV2(bytes: Buffer, count: number, where: string): [string, string][] {
  if (bytes[0] !== 0x02) throw new Error(`segment ${where}: not format v2`);
  let pos = 1;
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
  const out: [string, string][] = [];
  for (let i = 0; i < count; i += 1) {
    const flags = varint();
    const escaped = flags % 2 === 1;
    out.push([str(escaped), str(escaped)]);
    for (let h = 0; h < Math.floor(flags / 2) * 2; h += 1) str(escaped);
  }
  if (pos !== bytes.length) throw new Error(`segment ${where}: record count differs`);
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
      records = decodeV2(plaintext, segment.record_count, name);
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
