import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BusError } from '../errors';
import type { OutgoingMessage } from '../port';
import {
  COMPRESS_MIN_CHARS,
  decodeJsonLines,
  decodeSegment,
  encodeSegment,
  SEGMENT_FORMAT_V2,
  SEGMENT_FORMAT_V3,
} from './segment';

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

  it('writes each length at its minimal width where UTF-8 needs more bytes than the string has characters', () => {
    // Lengths whose varint is wider for the UTF-8 bytes than for the UTF-16 units: 100 × é (200 bytes),
    // 40 × 😀 (80 units, 160 bytes), 6,000 × あ (18,000 bytes: three-byte varint), and plain ASCII around it.
    const strings = [
      'é'.repeat(100),
      '😀'.repeat(40),
      'あ'.repeat(6000),
      'a'.repeat(127),
      'b'.repeat(128),
      '',
    ];
    const messages = strings.map((s, i) => ({ key: strings[strings.length - 1 - i] as string, value: s }));
    const bytes = encodeSegment(messages);
    const width = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : 3);
    const field = (s: string) => width(Buffer.byteLength(s)) + Buffer.byteLength(s);
    expect(bytes.length).toBe(1 + messages.reduce((n, m) => n + 1 + field(m.key) + field(m.value), 0));
    expect(decodeSegment(bytes, messages.length)).toEqual(messages.map((m) => ({ ...m, headers: {} })));
  });

  it('a segment encoded later does not change one encoded before (the encoder reuses its buffer)', () => {
    const first = encodeSegment([{ key: 'k1', value: 'x'.repeat(5000) }]);
    const copy = Buffer.from(first);
    encodeSegment([{ key: 'k2', value: 'y'.repeat(200_000) }]);
    encodeSegment([{ key: 'k3', value: 'z'.repeat(5000) }]);
    expect(first.equals(copy)).toBe(true);
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

/** A visitor's batch event: similar JSON text, as a browser batch carries (compresses well). */
const batchEvent = (visitor: string, i: number): OutgoingMessage => ({
  key: visitor,
  value: JSON.stringify({
    type: 'track',
    event: 'purchase',
    anonymousId: visitor,
    messageId: `m-${visitor}-${i}`,
    properties: { value: i, currency: 'EUR', items: [{ item_id: `sku-${i}`, price: 42.5 }] },
    context: { page: { url: 'https://shop.example/checkout?gclid=abc' }, consent: { categories: {} } },
  }),
});
const visitorBatch = (visitor: string, n: number) =>
  Array.from({ length: n }, (_, i) => batchEvent(visitor, i));

/** Splits `messages.length` into random group lengths (what the writer passes: runs of one call and key). */
const withGroups = (messages: readonly OutgoingMessage[], cuts: readonly number[]): number[] => {
  const points = [...new Set(cuts.map((c) => 1 + (c % Math.max(1, messages.length - 1))))]
    .filter((p) => p < messages.length)
    .sort((a, b) => a - b);
  const groups: number[] = [];
  let from = 0;
  for (const p of [...points, messages.length]) {
    groups.push(p - from);
    from = p;
  }
  return groups;
};

describe('segment format v3 (runs of one call and one key, compressed)', () => {
  const bigSegment = fc
    .array(fc.tuple(fc.constantFrom('anon-a', 'anon-b'), fc.integer({ min: 1, max: 60 })), {
      minLength: 1,
      maxLength: 5,
    })
    .chain((batches) =>
      fc.tuple(
        fc.constant(batches.flatMap(([visitor, n]) => visitorBatch(visitor, n))),
        fc.constant(batches.map(([, n]) => n)),
        fc.array(message, { maxLength: 3 }),
      ),
    );

  it('round-trips any mix of compressed and stored runs (property)', () => {
    fc.assert(
      fc.property(bigSegment, ([batches, groups, others]) => {
        const messages = [...batches, ...others];
        const all = [...groups, ...others.map(() => 1)];
        expect(decodeSegment(encodeSegment(messages, all), messages.length)).toEqual(asRecords(messages));
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(segment, fc.array(fc.nat(), { maxLength: 6 }), (messages, cuts) => {
        const groups = withGroups(messages, cuts);
        expect(decodeSegment(encodeSegment(messages, groups), messages.length)).toEqual(asRecords(messages));
      }),
      { numRuns: 300 },
    );
  });

  it('compresses a visitor batch, and leaves small groups and single events in v2', () => {
    const batch = visitorBatch('anon-a', 100);
    const plain = encodeSegment(batch);
    const packed = encodeSegment(batch, [100]);
    expect(plain[0]).toBe(SEGMENT_FORMAT_V2);
    expect(packed[0]).toBe(SEGMENT_FORMAT_V3);
    expect(packed.length).toBeLessThan(plain.length / 4);

    const small = visitorBatch('anon-a', 3);
    expect(small.reduce((n, m) => n + m.value.length, 0)).toBeLessThan(COMPRESS_MIN_CHARS);
    expect(encodeSegment(small, [3])).toEqual(encodeSegment(small));
    const singles = visitorBatch('anon-a', 40);
    expect(
      encodeSegment(
        singles,
        singles.map(() => 1),
      ),
    ).toEqual(encodeSegment(singles));
  });

  it('never compresses two groups together: each group is its own deflate stream', () => {
    // Two visitors' batches in one segment: were they one stream, the second would compress against the
    // first (its length would depend on the other visitor's data); as two streams each is as long as alone.
    const a = visitorBatch('anon-a', 40);
    const b = visitorBatch('anon-b', 40);
    const alone = (m: OutgoingMessage[]) => encodeSegment(m, [m.length]).length - 1;
    expect(encodeSegment([...a, ...b], [40, 40]).length - 1).toBe(alone(a) + alone(b));
  });

  it('refuses truncations, garbling, a run that inflates to a different length, or an unknown run form', () => {
    const messages = visitorBatch('anon-a', 30);
    const bytes = encodeSegment(messages, [30]);
    for (let cut = 0; cut < bytes.length; cut += 7) {
      expectCorrupt(() => decodeSegment(bytes.subarray(0, cut), messages.length));
    }
    expectCorrupt(() => decodeSegment(bytes, messages.length + 1));
    expectCorrupt(() => decodeSegment(bytes, messages.length - 1));
    const garbled = Buffer.from(bytes);
    garbled[garbled.length - 10] = (garbled[garbled.length - 10] as number) ^ 0xff;
    try {
      expect(decodeSegment(garbled, messages.length)).toHaveLength(messages.length);
    } catch (err) {
      expect((err as BusError).code).toBe('bus_invalid_message');
    }
    // A run claiming 5 raw bytes whose stream inflates to more: refused, not read past the claim.
    const bomb = deflateRawSync(Buffer.alloc(100_000));
    const header = Buffer.from([SEGMENT_FORMAT_V3, 1, 1, 5]);
    expectCorrupt(() => decodeSegment(Buffer.concat([header, encodeVarint(bomb.length), bomb]), 1));
    expectCorrupt(() => decodeSegment(Buffer.from([SEGMENT_FORMAT_V3, 1, 7, 3, 0, 0, 0]), 1));
    // Bytes after the end of a run's deflate stream, inside its stored length: refused, not ignored.
    const record = Buffer.from([0, 1, 0x6b, 1, 0x76]);
    const stream = deflateRawSync(record);
    const padded = Buffer.concat([stream, Buffer.from('hidden')]);
    const withTrailer = Buffer.concat([
      Buffer.from([SEGMENT_FORMAT_V3, 1, 1, record.length]),
      encodeVarint(padded.length),
      padded,
    ]);
    expectCorrupt(() => decodeSegment(withTrailer, 1));
    const exact = Buffer.concat([
      Buffer.from([SEGMENT_FORMAT_V3, 1, 1, record.length]),
      encodeVarint(stream.length),
      stream,
    ]);
    expect(decodeSegment(exact, 1)).toEqual([{ key: 'k', value: 'v', headers: {} }]);
    // Runs whose raw lengths add up past the bound: the first (a real 40 MiB record) inflates, the second
    // is refused before inflating anything.
    const big = 40 * 1024 * 1024;
    const raw = Buffer.concat([Buffer.of(0, 0), encodeVarint(big), Buffer.alloc(big, 0x61)]);
    const packed = deflateRawSync(raw, { level: 1 });
    const run = Buffer.concat([
      Buffer.of(1, 1),
      encodeVarint(raw.length),
      encodeVarint(packed.length),
      packed,
    ]);
    expect(decodeSegment(Buffer.concat([Buffer.of(SEGMENT_FORMAT_V3), run]), 1)[0]?.value).toHaveLength(big);
    expect(() => decodeSegment(Buffer.concat([Buffer.of(SEGMENT_FORMAT_V3), run, run]), 2)).toThrow(
      /inflate past the bound/,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 2 ** 31 }), (random, count) => {
        try {
          decodeSegment(Buffer.concat([Buffer.from([SEGMENT_FORMAT_V3]), random]), count);
        } catch (err) {
          expect((err as BusError).code).toBe('bus_invalid_message');
        }
      }),
    );
  });
});

function encodeVarint(n: number): Buffer {
  const out: number[] = [];
  let rest = n;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.from(out);
}

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
