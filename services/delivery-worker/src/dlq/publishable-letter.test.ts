import { type DlqMessage, dlqMessageSchema } from '@signal/events';
import { describe, expect, it } from 'vitest';
import { publishableLetter } from './publishable-letter';

const valid: DlqMessage = {
  error: 'retries_exhausted',
  details: '5 attempts failed; the last with vendor_unavailable',
  original: { integrationId: 'wh-1', event: { messageId: 'm-1', note: 'a\u0000b' }, attempt: { number: 5 } },
  originalKey: 'anon-1',
  topic: 'ns.delivery-wh-1',
  integrationId: 'wh-1',
  attempts: 5,
  lastResponse: { status: 503, body: 'unavailable' },
  failedAt: '2025-01-02T03:04:05.000Z',
};

describe('publishableLetter', () => {
  it('returns a valid letter as it is', () => {
    const checked = publishableLetter(valid);
    expect(checked.letter).toBe(valid);
    expect(checked.repaired).toEqual([]);
  });

  it('keeps a vendor status outside 100-599 (999) as an error code, so the publish cannot fail', () => {
    const letter = { ...valid, lastResponse: { status: 999, body: 'Request denied' } };
    expect(dlqMessageSchema.safeParse(letter).success).toBe(false);
    const checked = publishableLetter(letter);
    expect(dlqMessageSchema.safeParse(checked.letter).success).toBe(true);
    expect(checked.letter.lastResponse).toEqual({ errorCode: 'http_status_999', body: 'Request denied' });
    expect(checked.repaired).toEqual(['lastResponse']);
    // Everything else, the original above all, is kept exactly.
    expect({ ...checked.letter, lastResponse: undefined }).toEqual({ ...valid, lastResponse: undefined });
  });

  it('brings every other field into the schema, keeping what it can', () => {
    const letter = {
      ...valid,
      error: 'x'.repeat(300),
      details: 'd'.repeat(5000),
      originalKey: 'k'.repeat(2000),
      integrationId: 'not an id!',
      attempts: 5000,
      lastResponse: { status: 42.5, body: 'b'.repeat(5000), errorCode: 'E'.repeat(300) },
      failedAt: 'yesterday',
    } as DlqMessage;
    const checked = publishableLetter(letter);
    expect(dlqMessageSchema.safeParse(checked.letter).success).toBe(true);
    expect(checked.letter).toMatchObject({
      error: 'x'.repeat(128),
      details: 'd'.repeat(4096),
      originalKey: 'k'.repeat(1024),
      attempts: 1000,
      lastResponse: { body: 'b'.repeat(4096), errorCode: 'E'.repeat(128) },
      original: valid.original,
      topic: valid.topic,
    });
    expect(checked.letter.integrationId).toBeUndefined();
    expect(Number.isNaN(Date.parse(checked.letter.failedAt))).toBe(false);
    expect([...checked.repaired].sort()).toEqual(
      ['attempts', 'details', 'error', 'failedAt', 'integrationId', 'lastResponse', 'originalKey'].sort(),
    );
  });

  it('keeps an original beyond the JSON bounds as its JSON text', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 20; i += 1) deep = { d: deep };
    const checked = publishableLetter({ ...valid, original: deep as DlqMessage['original'] });
    expect(dlqMessageSchema.safeParse(checked.letter).success).toBe(true);
    expect(JSON.parse(checked.letter.original as string)).toEqual(deep);
    expect(checked.repaired).toEqual(['original']);
  });
});
