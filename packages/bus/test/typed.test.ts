import { type CanonicalEvent, type DlqMessage, dlqMessageSchema, topics } from '@signal/events';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Bus,
  BusError,
  busMigrations,
  createPostgresBus,
  type Decoded,
  deadLetter,
  publishTo,
  subscribeTo,
} from '../src/index';
import { randomId, recordingLogger, testCrypto, waitFor, waitForAsync } from './helpers';
import { TEST_TIMINGS } from './timings';

function event(anonymousId: string, n: number): CanonicalEvent {
  return {
    type: 'track',
    event: 'Viewed',
    anonymousId,
    messageId: `${anonymousId}-${n}`,
    properties: { n },
    traits: {},
    context: { consent: {}, provenance: 'pipeline_key' },
    timestamp: '2025-01-01T00:00:00.000Z',
    receivedAt: '2025-01-01T00:00:00.000Z',
    org: 'org_1',
    pipelineId: 'pl_1',
  };
}

describe('typed topics over the bus', () => {
  let db: Database;
  let bus: Bus;

  beforeAll(async () => {
    db = await createDatabase({ kind: 'pglite' });
    await migrate(db, busMigrations);
    bus = createPostgresBus({ db, logger: recordingLogger(), crypto: testCrypto(), ...TEST_TIMINGS });
  });
  afterAll(async () => {
    await bus.close();
    await db.close();
  });

  it('publishes catalog values keyed by visitor and hands consumers decoded values or reasons', async () => {
    const ns = randomId('ns');
    const raw = topics.rawEvents(ns);
    const receipts = await publishTo(bus, raw, [event('v1', 1), event('v2', 1), event('v1', 2)]);
    expect(receipts.reduce((n, r) => n + r.count, 0)).toBe(3);
    // A producer that bypasses the catalog can still write garbage; consumers get it as a value, not a throw.
    await bus.publish(raw.name, [
      { key: 'v1', value: '{"type":"track"}' },
      { key: 'v1', value: 'not json' },
    ]);

    const items: Decoded<CanonicalEvent>[] = [];
    await subscribeTo(bus, {
      groupId: randomId('g'),
      topics: [raw],
      handler: async (batch) => {
        expect(batch.topic).toBe(raw);
        items.push(...batch.items);
      },
    });
    await waitFor(() => items.length >= 5, 'five items');
    const ok = items.filter((i) => i.ok).map((i) => (i.ok ? i.value.messageId : ''));
    expect(ok.sort()).toEqual(['v1-1', 'v1-2', 'v2-1']);
    const v1 = items.filter((i) => i.message.key === 'v1').map((i) => (i.ok ? i.value.messageId : i.reason));
    expect(v1[0]).toBe('v1-1');
    expect(v1[1]).toBe('v1-2');
    expect(v1[2]).toMatch(/^messageId: /);
    expect(v1[3]).toBe('value is not JSON');
  });

  it('refuses to publish a value that breaks its topic schema, and publishes none of the call', async () => {
    const ns = randomId('ns');
    const raw = topics.rawEvents(ns);
    const bad = { ...event('v', 1), messageId: 'has space' };
    await expect(publishTo(bus, raw, [event('v', 0), bad])).rejects.toThrow(BusError);
    await expect(publishTo(bus, raw, [bad])).rejects.toThrow(
      /message 0 for .* does not match its schema: messageId/,
    );
    const { rows } = await db.query('SELECT 1 FROM bus_segments WHERE topic = $1', [raw.name]);
    expect(rows).toHaveLength(0);
  });

  it('turns a poison message into a dead letter that validates and replays onto its key', async () => {
    const ns = randomId('ns');
    const raw = topics.rawEvents(ns);
    await bus.publish(raw.name, [{ key: 'visitor-9', value: '{"type":"track","bogus":true}' }]);
    const letters: DlqMessage[] = [];
    await subscribeTo(bus, {
      groupId: randomId('g'),
      topics: [raw],
      handler: async (batch) => {
        for (const item of batch.items) {
          if (item.ok) continue;
          letters.push(
            deadLetter(item.message, {
              error: 'invalid_message',
              details: item.reason,
              failedAt: new Date(0),
            }),
          );
        }
        const dlq = raw.dlq;
        if (dlq !== null && letters.length > 0) await publishTo(bus, dlq, letters);
      },
    });
    await waitFor(() => letters.length === 1, 'one dead letter');
    const letter = dlqMessageSchema.parse(letters[0]);
    expect(letter).toMatchObject({
      error: 'invalid_message',
      original: { type: 'track', bogus: true },
      originalKey: 'visitor-9',
      topic: raw.name,
      failedAt: '1970-01-01T00:00:00.000Z',
    });
    // The handler publishes the letter after collecting it: wait for that commit, not just the collection.
    let deadCount: string | null | undefined;
    await waitForAsync(async () => {
      const dead = await db.query<{ n: string | null }>(
        'SELECT sum(record_count)::text AS n FROM bus_segments WHERE topic = $1',
        [topics.dlqEvents(ns).name],
      );
      deadCount = dead.rows[0]?.n;
      return deadCount !== null && deadCount !== undefined;
    }, 'the dead letter on dlq-events');
    expect(deadCount).toBe('1');
  });
});
