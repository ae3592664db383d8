import type { Queryable } from '@signal/store';
import { z } from 'zod';

/**
 * Reads what the embedded bus durably holds for one topic, straight from its tables (`bus_segments`: one
 * row per group commit, the records as JSON lines of `[key, value]` or `[key, value, headers]`). A test
 * reads the stored form independently of the bus adapter, so it checks what is on disk, not what the
 * adapter would hand back.
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

export async function readTopicMessages(db: Queryable, topic: string): Promise<StoredMessage[]> {
  const { rows } = await db.query(
    'SELECT partition, base_offset, record_count, records FROM bus_segments WHERE topic = $1 ORDER BY partition, base_offset',
    [topic],
  );
  const out: StoredMessage[] = [];
  for (const raw of rows) {
    const segment = segmentRow.parse(raw);
    const lines = segment.records.split('\n');
    if (lines.length !== segment.record_count) {
      throw new Error(`segment ${topic}/${segment.partition}@${segment.base_offset}: record count differs`);
    }
    lines.forEach((line, index) => {
      const [key, value] = record.parse(JSON.parse(line));
      out.push({ partition: segment.partition, offset: Number(segment.base_offset) + index, key, value });
    });
  }
  return out;
}
