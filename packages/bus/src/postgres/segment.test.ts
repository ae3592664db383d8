import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BusError } from '../errors';
import type { OutgoingMessage } from '../port';
import { decodeJsonLines, decodeSegment, encodeSegment, SEGMENT_FORMAT_V2 } from './segment';

/** The v1 writer as released before bus/0004 (JSON lines), to produce what old deployments still hold. */
function legacyJsonLines(messages: readonly OutgoingMessage[]): string {
  return messages
    .map((m) =>
      m.headers === undefined || Object.keys(m.headers).length === 0
        ? JSON.stringify([m.key, m.value])
        : JSON.stringify([m.key, m.value, m.headers]),
    )
    .join('\n');
}

function expectCorrupt(decode: () => unknown): void {
  try {
    decode();
  } catch (err) {
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('bus_invalid_message');
    return;
  }
  throw new Error('expected the segment to be refused as corrupt');
}

const asRecords = (messages: readonly OutgoingMessage[]) =>
  messages.map((m) => ({ key: m.key, value: m.value, headers: { ...(m.headers ?? {}) } }));

/** Any JavaScript string: full Unicode (astral characters as surrogate pairs), plus lone surrogates. */
const anyString = fc.string({
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
  ),
});
const message = fc.record(
  {
    key: anyString,
    value: anyString,
    headers: fc.dictionary(fc.oneof(anyString, fc.constant('__proto__')), anyString, { maxKeys: 40 }),
  },
  { requiredKeys: ['key', 'value'] },
);
const segment = fc.array(message, { minLength: 1, maxLength: 30 });

describe('segment format v2 (binary)', () => {
  it('round-trips any keys, values and headers: astral characters, lone surrogates, empty strings, many headers (property)', () => {
    fc.assert(
      fc.property(segment, (messages) => {
        const decoded = decodeSegment(encodeSegment(messages), messages.length);
        expect(decoded).toEqual(asRecords(messages));
        for (const [i, record] of decoded.entries()) {
          expect(Object.keys(record.headers)).toEqual(Object.keys(messages[i]?.headers ?? {}));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses every truncation of a segment as corrupt (property)', () => {
    fc.assert(
      fc.property(segment, fc.nat(), (messages, cut) => {
        const bytes = encodeSegment(messages);
        expectCorrupt(() => decodeSegment(bytes.subarray(0, cut % bytes.length), messages.length));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes garbled bytes to records or refuses them as corrupt, never anything else (property)', () => {
    const edit = fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), kind: fc.nat(2) });
    fc.assert(
      fc.property(
        segment,
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -2, max: 2 }),
        (messages, edits, countDelta) => {
          let bytes = Buffer.from(encodeSegment(messages));
          for (const { at, byte, kind } of edits) {
            const i = at % (bytes.length + 1);
            if (kind === 0 && i < bytes.length) bytes[i] = byte;
            else if (kind === 1)
              bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([byte]), bytes.subarray(i)]);
            else bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
          }
          try {
            const records = decodeSegment(bytes, messages.length + countDelta);
            expect(records).toHaveLength(messages.length + countDelta);
          } catch (err) {
            expect(err).toBeInstanceOf(BusError);
            expect((err as BusError).code).toBe('bus_invalid_message');
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses random bytes as corrupt, never with a RangeError (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 2 ** 31 }), (random, count) => {
        const bytes = Buffer.concat([Buffer.from([SEGMENT_FORMAT_V2]), random]);
        try {
          decodeSegment(bytes, count);
        } catch (err) {
          expect(err).toBeInstanceOf(BusError);
          expect((err as BusError).code).toBe('bus_invalid_message');
        }
      }),
    );
  });

  it('stores values as raw UTF-8 after a version byte and varint lengths', () => {
    const value = '{"x":"é"}';
    expect(encodeSegment([{ key: 'a', value }]).toString('hex')).toBe(
      ['02', '00', '01', '61', '0a', Buffer.from(value).toString('hex')].join(''),
    );
    // One header (flags 2), a 200-byte value (two-byte varint c8 01).
    const long = 'v'.repeat(200);
    const bytes = encodeSegment([{ key: '', value: long, headers: { t: '1' } }]);
    expect(bytes.subarray(0, 5).toString('hex')).toBe('020200c801');
    expect(bytes.subarray(205).toString('hex')).toBe('0174' + '0131');
  });

  it('escapes the strings of a record with a lone surrogate instead of turning it into U+FFFD', () => {
    const bytes = encodeSegment([
      { key: 'k\uD800', value: '{}' },
      { key: 'k', value: 'plain' },
    ]);
    // Flags 1 (escaped, no headers), then the key as the JSON string "k\ud800".
    expect(bytes.subarray(1, 12).toString('latin1')).toBe('\x01\x09"k\\ud800"');
    expect(decodeSegment(bytes, 2)).toEqual([
      { key: 'k\uD800', value: '{}', headers: {} },
      { key: 'k', value: 'plain', headers: {} },
    ]);
  });

  it('is much smaller than JSON lines for JSON event values', () => {
    const event = JSON.stringify({
      type: 'track',
      event: 'purchase',
      properties: { value: 42.5, currency: 'EUR', items: [{ item_id: 'sku-1', price: 42.5 }] },
      context: { page: { url: 'https://shop.example.com/checkout', referrer: 'https://www.google.com/' } },
    });
    const messages = Array.from({ length: 100 }, (_, i) => ({ key: `anon-${i}`, value: event }));
    const v2 = encodeSegment(messages).length;
    const v1 = Buffer.byteLength(legacyJsonLines(messages), 'utf8');
    expect(v2).toBe(1 + messages.reduce((n, m) => n + 1 + 1 + m.key.length + 2 + event.length, 0));
    // Every quote of the value was escaped in v1 (and the record framed as a JSON array).
    expect(v2 / v1).toBeLessThan(0.9);
  });

  it('refuses malformed segments as corrupt', () => {
    const good = encodeSegment([{ key: 'a', value: '1' }]);
    const cases: [string, Uint8Array, number][] = [
      ['empty', Buffer.alloc(0), 1],
      ['unknown version', Buffer.from([0x03, 0, 1, 0x61, 1, 0x31]), 1],
      ['JSON lines in the binary column', Buffer.from('["a","1"]'), 1],
      ['too few records', good, 2],
      ['zero records', good, 0],
      ['a count no buffer of this size can hold', good, 2 ** 31 - 1],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), 1],
      ['key length past the end', Buffer.from([2, 0, 0x7f, 0x61]), 1],
      ['overlong varint', Buffer.from([2, 0x80, 0x00, 1, 0x61, 1, 0x31]), 1],
      ['varint of six bytes', Buffer.from([2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 1],
      ['varint above 2^32', Buffer.from([2, 0, 0xff, 0xff, 0xff, 0xff, 0x7f]), 1],
      ['header count past the end', Buffer.from([2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0]), 1],
      ['duplicate header', Buffer.from([2, 4, 0, 0, 1, 0x68, 0, 1, 0x68, 0]), 1],
      ['escaped string that is not JSON', Buffer.from([2, 1, 1, 0x61, 2, 0x22, 0x22]), 1],
      ['escaped string that is a number', Buffer.from([2, 1, 1, 0x31, 2, 0x22, 0x22]), 1],
    ];
    for (const [name, bytes, count] of cases) {
      try {
        decodeSegment(bytes, count);
      } catch (err) {
        expect(err, name).toBeInstanceOf(BusError);
        expect((err as BusError).code, name).toBe('bus_invalid_message');
        continue;
      }
      throw new Error(`${name}: expected the segment to be refused`);
    }
  });
});

describe('segment format v1 (JSON lines, read only)', () => {
  it('reads what the released writer wrote: any keys, values and headers, newlines and all (property)', () => {
    fc.assert(
      fc.property(segment, (messages) => {
        expect(decodeJsonLines(legacyJsonLines(messages), messages.length)).toEqual(asRecords(messages));
      }),
    );
  });

  it('refuses corrupt segments instead of inventing messages', () => {
    const good = legacyJsonLines([{ key: 'a', value: '1' }]);
    for (const [text, count] of [
      [good, 2],
      ['["a"]', 1],
      ['{"k":"a"}', 1],
      ['["a",1]', 1],
      ['["a","1",{"h":2}]', 1],
      ['["a","1"', 1],
    ] as const) {
      expectCorrupt(() => decodeJsonLines(text, count));
    }
  });
});
