import { type BusCrypto, segmentContext } from '@signal/bus';
import type { Queryable } from '@signal/store';
import { z } from 'zod';

/**
 * Reads what the embedded bus durably holds for one topic, straight from its tables (`bus_segments`: one
 * row per group commit, the records as JSON lines of `[key, value]` or `[key, value, headers]`, sealed in the
 * v1 text form bound to topic, partition and base offset). A test reads the stored form independently of the
 * bus adapter, so it checks what is on disk, not what the adapter would hand back. `rawRecords` is the stored
 * text as is, for asserting that no plaintext is in it.
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
  records: z.string(),
});

const record = z.union([
  z.tuple([z.string(), z.string()]),
  z.tuple([z.string(), z.string(), z.record(z.string(), z.string())]),
]);

export async function readTopicMessages(
  db: Queryable,
  topic: string,
  crypto: BusCrypto,
): Promise<{ messages: StoredMessage[]; rawRecords: string[] }> {
  const { rows } = await db.query(
    'SELECT partition, base_offset, record_count, records FROM bus_segments WHERE topic = $1 ORDER BY partition, base_offset',
    [topic],
  );
  const messages: StoredMessage[] = [];
  const rawRecords: string[] = [];
  for (const raw of rows) {
    const segment = segmentRow.parse(raw);
    rawRecords.push(segment.records);
    const where = { topic, partition: segment.partition, baseOffset: Number(segment.base_offset) };
    const lines = crypto.openText(segment.records, segmentContext(where)).toString('utf8').split('\n');
    if (lines.length !== segment.record_count) {
      throw new Error(`segment ${topic}/${segment.partition}@${segment.base_offset}: record count differs`);
    }
    lines.forEach((line, index) => {
      const [key, value] = record.parse(JSON.parse(line));
      messages.push({ partition: segment.partition, offset: where.baseOffset + index, key, value });
    });
  }
  return { messages, rawRecords };
}
