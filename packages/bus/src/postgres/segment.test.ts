import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BusError } from '../errors';
import { decodeRecords, encodeRecords } from './segment';

describe('segment records', () => {
  it('round-trip any keys, values and headers, newlines and all (property)', () => {
    const message = fc.record(
      {
        key: fc.string({ unit: 'binary' }),
        value: fc.string({ unit: 'binary' }),
        headers: fc.dictionary(fc.string(), fc.string({ unit: 'binary' })),
      },
      { requiredKeys: ['key', 'value'] },
    );
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 20 }), (messages) => {
        const decoded = decodeRecords(encodeRecords(messages), messages.length);
        expect(decoded).toEqual(
          messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })),
        );
      }),
    );
  });

  it('stores one JSON line per record', () => {
    const text = encodeRecords([
      { key: 'a', value: 'line one\nline two' },
      { key: 'b', value: '{"x":1}', headers: { trace: 't-1' } },
    ]);
    expect(text.split('\n')).toEqual(['["a","line one\\nline two"]', '["b","{\\"x\\":1}",{"trace":"t-1"}]']);
  });

  it('refuses corrupt segments instead of inventing messages', () => {
    const good = encodeRecords([{ key: 'a', value: '1' }]);
    for (const [text, count] of [
      [good, 2],
      ['["a"]', 1],
      ['{"k":"a"}', 1],
      ['["a",1]', 1],
      ['["a","1",{"h":2}]', 1],
      ['["a","1"', 1],
    ] as const) {
      expect(() => decodeRecords(text, count)).toThrow(BusError);
    }
  });
});
