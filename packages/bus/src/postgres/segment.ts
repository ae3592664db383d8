import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { BusError } from '../errors';
import type { OutgoingMessage } from '../port';

/**
 * The records of one segment (one group commit's messages for one partition), stored as one row: one seal
 * per segment instead of one row per message (ARCHITECTURE §2: one row per event tops out near 17K rows/s on
 * PGlite). Two forms (ADR 0010-binary-bus-segments):
 *
 * **v2, binary** (`encodeSegment`/`decodeSegment`, written since bus/0004, sealed with `seal` into the
 * `payload bytea` column). Strings are stored as their raw UTF-8, so an event's JSON text is carried as is
 * instead of having every quote escaped by a second JSON layer:
 *
 *     segment := 0x02 record*                       (exactly `record_count` records, nothing after them)
 *     record  := varint(headers × 2 + escaped) str(key) str(value) (str(name) str(value))^headers
 *     str     := varint(byte length) bytes
 *
 * Lengths are unsigned LEB128 varints (at most 5 bytes, minimal form): a ~36-byte key, a ~600-byte value
 * and no headers cost 4 bytes of framing where u32 lengths would cost 12, and the encoder measures every
 * string before writing anyway, so a varint's width is known when it is written. `escaped` is set only for a
 * record holding a lone UTF-16 surrogate, which UTF-8 cannot represent (it would arrive as U+FFFD): all
 * strings of that record are then stored as the UTF-8 of their JSON form (`"\ud800"`), so every JavaScript
 * string round-trips exactly, as it did in v1.
 *
 * **v1, JSON lines** (`decodeJsonLines`, read only: segments written before bus/0004, in the `records text`
 * column): one `[key, value]` or `[key, value, headers]` array per message, joined by `\n` (JSON.stringify
 * escapes every newline inside a string, so a raw `\n` only ever separates records).
 *
 * Decoding checks every length against the bytes that are left and the stored record count, and fails with
 * `bus_invalid_message` ("corrupt"), never with a RangeError or a read past the end.
 */
export interface StoredRecord {
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
}

export const SEGMENT_FORMAT_V2 = 0x02;
/** v2 records in runs, some compressed (ADR 0011-compressed-bus-runs). */
export const SEGMENT_FORMAT_V3 = 0x03;

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** Largest length a varint may carry: five 7-bit groups, kept below 2^32. */
const MAX_VARINT = 0xffff_ffff;

function wellFormed(s: string): boolean {
  // Native (Node 20+): a regex scan over every event's JSON was ~4% of a batch publish.
  return s.isWellFormed();
}

function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x20_0000 ? 3 : n < 0x1000_0000 ? 4 : 5;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  let pos = at;
  let rest = n;
  while (rest >= 0x80) {
    buf[pos] = (rest & 0x7f) | 0x80;
    pos += 1;
    rest = Math.floor(rest / 0x80);
  }
  buf[pos] = rest;
  return pos + 1;
}

/** Kept between encodes up to this size: a larger segment gets a buffer of its own, released after. */
const SCRATCH_KEEP_BYTES = 4 * 1024 * 1024;
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

function scratchOf(bytes: number): Buffer {
  if (bytes <= scratch.length) return scratch;
  if (bytes > SCRATCH_KEEP_BYTES) return Buffer.allocUnsafeSlow(bytes);
  scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_KEEP_BYTES, Math.max(bytes, scratch.length * 2)));
  return scratch;
}

/** The v2 bytes of `messages[from, to)`, copied out of the scratch buffer. */
function encodeV2(messages: readonly OutgoingMessage[], from = 0, to = messages.length): Buffer {
  const view = writeV2(messages, from, to);
  const out = Buffer.allocUnsafe(view.length);
  view.copy(out);
  return out;
}

/**
 * Writes the v2 form of `messages[from, to)` into a reused buffer and returns a view of it, valid only until
 * the next encode: the caller copies it out (`encodeV2`) or consumes it at once (deflate).
 *
 * Each string is written once, with `buf.write`, into room reserved for its largest UTF-8 form (3 bytes per
 * UTF-16 unit): measuring every string first with `Buffer.byteLength` scanned each event's JSON a second
 * time. Its length varint is written in front afterwards; the room reserved for the varint assumes one byte
 * per character (exact for ASCII, the common case), and a string that needs a wider varint is moved up by the
 * one or two bytes missing.
 */
function writeV2(messages: readonly OutgoingMessage[], from: number, to: number): Buffer {
  const count = to - from;
  // Records that need more than a key and a value: their flags, and every string in write order
  // (JSON-escaped if `escaped`).
  let special: ({ flag: number; strings: string[] } | undefined)[] | undefined;
  let bound = 1;
  const room = (s: string): number => varintSize(s.length * 3) + s.length * 3;
  for (let i = 0; i < count; i += 1) {
    const m = messages[from + i] as OutgoingMessage;
    const names = m.headers === undefined ? undefined : Object.keys(m.headers);
    if ((names === undefined || names.length === 0) && wellFormed(m.key) && wellFormed(m.value)) {
      bound += 1 + room(m.key) + room(m.value);
      continue;
    }
    let strings = [m.key, m.value];
    const headers = m.headers ?? NO_HEADERS;
    for (const name of names ?? []) strings.push(name, headers[name] as string);
    const escaped = !strings.every(wellFormed);
    if (escaped) strings = strings.map((s) => JSON.stringify(s));
    special ??= new Array<{ flag: number; strings: string[] } | undefined>(count);
    // flag = headers × 2 + escaped; two strings per header after the key and the value.
    special[i] = { flag: strings.length - 2 + (escaped ? 1 : 0), strings };
    bound += 5;
    for (const s of strings) bound += room(s);
  }

  const buf = scratchOf(bound);
  buf[0] = SEGMENT_FORMAT_V2;
  let pos = 1;
  const put = (s: string): void => {
    const guess = varintSize(s.length);
    const n = buf.write(s, pos + guess, 'utf8');
    const width = varintSize(n);
    if (width !== guess) buf.copyWithin(pos + width, pos + guess, pos + guess + n);
    pos = writeVarint(buf, pos, n) + n;
  };
  for (let i = 0; i < count; i += 1) {
    const record = special?.[i];
    if (record === undefined) {
      const m = messages[from + i] as OutgoingMessage;
      buf[pos] = 0;
      pos += 1;
      put(m.key);
      put(m.value);
    } else {
      pos = writeVarint(buf, pos, record.flag);
      for (const s of record.strings) put(s);
    }
  }
  if (pos > bound) throw new Error(`segment encoding wrote ${pos} bytes into room for ${bound}`);
  return buf.subarray(0, pos);
}

/**
 * Encodes a segment. `groups`, when given, splits the messages (in order) into runs that may be compressed
 * together: the writer passes consecutive messages of one publish call with one key (one visitor's batch),
 * never more (ADR 0011-compressed-bus-runs: no compression context ever holds two visitors' data). Without
 * a group worth compressing (at least two messages and COMPRESS_MIN_CHARS) the segment is v2; otherwise v3,
 * where each such group is a run compressed with raw deflate (kept only if it saves at least an eighth) and
 * the messages between them are stored runs.
 */
export function encodeSegment(messages: readonly OutgoingMessage[], groups?: readonly number[]): Buffer {
  const compressible = groups === undefined ? [] : compressibleGroups(messages, groups);
  if (compressible.length === 0) return encodeV2(messages);
  const parts: Buffer[] = [Buffer.of(SEGMENT_FORMAT_V3)];
  let storedFrom = 0;
  let compressedRuns = 0;
  // What a reader will inflate in all, kept within its bound (else the reader would call the segment corrupt).
  let inflated = 0;
  const storeUpTo = (to: number): void => {
    if (to <= storedFrom) return;
    const body = encodeV2(messages, storedFrom, to).subarray(1);
    parts.push(runHeader(to - storedFrom, RUN_STORED, [body.length]), body);
    storedFrom = to;
  };
  for (const [from, to] of compressible) {
    // Deflated straight from the scratch buffer: only the packed bytes are kept.
    const raw = writeV2(messages, from, to).subarray(1);
    if (inflated + raw.length > MAX_INFLATED_BYTES) continue;
    const packed = deflateRawSync(raw, { level: 1 });
    if (packed.length > raw.length - raw.length / 8) continue;
    storeUpTo(from);
    parts.push(runHeader(to - from, RUN_DEFLATE, [raw.length, packed.length]), packed);
    storedFrom = to;
    compressedRuns += 1;
    inflated += raw.length;
  }
  if (compressedRuns === 0) return encodeV2(messages);
  storeUpTo(messages.length);
  return Buffer.concat(parts);
}

/** Runs below this many characters are not compressed: zlib's set-up costs more than PGlite saves on them. */
export const COMPRESS_MIN_CHARS = 4096;
/**
 * Most bytes a reader inflates for one segment, all runs together (a bound on allocation; the writer's
 * segments are far smaller, and it stores a run rather than compress past this bound).
 */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;
const RUN_STORED = 0;
const RUN_DEFLATE = 1;

/** [from, to) of each group of at least two messages and COMPRESS_MIN_CHARS characters. */
function compressibleGroups(
  messages: readonly OutgoingMessage[],
  groups: readonly number[],
): [number, number][] {
  const out: [number, number][] = [];
  let from = 0;
  for (const n of groups) {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`segment group of ${n} messages`);
    const to = from + n;
    if (n >= 2) {
      let chars = 0;
      for (let i = from; i < to && chars < COMPRESS_MIN_CHARS; i += 1) {
        const m = messages[i] as OutgoingMessage;
        chars += m.key.length + m.value.length;
      }
      if (chars >= COMPRESS_MIN_CHARS) out.push([from, to]);
    }
    from = to;
  }
  if (from !== messages.length)
    throw new Error(`segment groups cover ${from} of ${messages.length} messages`);
  return out;
}

function runHeader(count: number, mode: number, lengths: readonly number[]): Buffer {
  const fields = [count, mode, ...lengths];
  const buf = Buffer.allocUnsafe(fields.reduce((n, f) => n + varintSize(f), 0));
  let pos = 0;
  for (const f of fields) pos = writeVarint(buf, pos, f);
  return buf;
}

function corrupt(reason: string): BusError {
  return new BusError('bus_invalid_message', `a stored bus segment is corrupt: ${reason}`);
}

/** A cursor over a v2 segment; every read checks the bounds first. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
  ) {}

  get left(): number {
    return this.buf.length - this.pos;
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 5; i += 1) {
      if (this.pos >= this.buf.length) throw corrupt('truncated length');
      const byte = this.buf[this.pos] as number;
      this.pos += 1;
      n += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        // Minimal form only (no trailing zero groups), so each segment has one encoding.
        if (byte === 0 && i > 0) throw corrupt('overlong length');
        if (n > MAX_VARINT) throw corrupt('length out of range');
        return n;
      }
      scale *= 0x80;
    }
    throw corrupt('length too long');
  }

  string(escaped: boolean): string {
    const n = this.varint();
    if (n > this.left) throw corrupt('length past the end');
    const text = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    if (!escaped) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw corrupt('bad escaped string');
    }
    if (typeof parsed !== 'string') throw corrupt('bad escaped string');
    return parsed;
  }
}

/** The smallest record: its flags, an empty key and an empty value (one byte each). */
const MIN_RECORD_BYTES = 3;

/**
 * Decodes a segment written by `encodeSegment` (v2, or v3 with compressed runs); `expected` is the stored
 * record count.
 */
export function decodeSegment(bytes: Uint8Array, expected: number): StoredRecord[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Checked before allocating anything: the count is stored outside the sealed bytes.
  if (!Number.isSafeInteger(expected) || expected < 1) throw corrupt('record count differs');
  if (buf.length > 0 && buf[0] === SEGMENT_FORMAT_V3) return decodeRuns(buf, expected);
  if (buf.length === 0 || buf[0] !== SEGMENT_FORMAT_V2) throw corrupt('unknown segment format');
  if (expected * MIN_RECORD_BYTES > buf.length - 1) throw corrupt('record count differs');
  const out = new Array<StoredRecord>(expected);
  const reader = new Reader(buf, 1);
  readRecords(reader, expected, out, 0);
  if (reader.left !== 0) throw corrupt('record count differs');
  return out;
}

/** Reads `count` v2 records into `out` from `at`. */
function readRecords(reader: Reader, count: number, out: StoredRecord[], at: number): void {
  for (let i = 0; i < count; i += 1) {
    const flags = reader.varint();
    const escaped = (flags & 1) === 1;
    const headerCount = Math.floor(flags / 2);
    const key = reader.string(escaped);
    const value = reader.string(escaped);
    // Each header takes at least two bytes; a larger count cannot be real (and must not drive the loop).
    if (headerCount * 2 > reader.left) throw corrupt('header count past the end');
    let headers = NO_HEADERS;
    if (headerCount > 0) {
      const h: Record<string, string> = {};
      for (let j = 0; j < headerCount; j += 1) {
        const name = reader.string(escaped);
        const v = reader.string(escaped);
        if (Object.hasOwn(h, name)) throw corrupt('duplicate header');
        // defineProperty: a header named "__proto__" is an own property, as JSON.parse makes it.
        Object.defineProperty(h, name, { value: v, enumerable: true, writable: true, configurable: true });
      }
      headers = h;
    }
    out[at + i] = { key, value, headers };
  }
}

function decodeRuns(buf: Buffer, expected: number): StoredRecord[] {
  const out: StoredRecord[] = [];
  const reader = new Reader(buf, 1);
  let inflated = 0;
  while (reader.left > 0) {
    const count = reader.varint();
    const mode = reader.varint();
    if (count < 1 || out.length + count > expected) throw corrupt('record count differs');
    if (mode === RUN_STORED) {
      const length = reader.varint();
      if (length > reader.left || count * MIN_RECORD_BYTES > length) throw corrupt('run past the end');
      const body = new Reader(buf.subarray(0, reader.pos + length), reader.pos);
      readRecords(body, count, out, out.length);
      if (body.left !== 0) throw corrupt('run length differs');
      reader.pos += length;
    } else if (mode === RUN_DEFLATE) {
      const rawLength = reader.varint();
      const length = reader.varint();
      if (length > reader.left || count * MIN_RECORD_BYTES > rawLength) throw corrupt('run past the end');
      inflated += rawLength;
      if (inflated > MAX_INFLATED_BYTES) throw corrupt('runs inflate past the bound');
      let raw: Buffer;
      let consumed: number;
      try {
        // Bounded by the stored length: a run never inflates past what its writer measured.
        const result = inflateRawSync(buf.subarray(reader.pos, reader.pos + length), {
          maxOutputLength: rawLength,
          info: true,
        }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
        raw = result.buffer;
        consumed = result.engine.bytesWritten;
      } catch {
        throw corrupt('bad compressed run');
      }
      // The stream must end exactly where the run does: nothing unread hidden after it.
      if (raw.length !== rawLength || consumed !== length) throw corrupt('run length differs');
      const body = new Reader(raw, 0);
      readRecords(body, count, out, out.length);
      if (body.left !== 0) throw corrupt('run length differs');
      reader.pos += length;
    } else {
      throw corrupt('unknown run form');
    }
  }
  if (out.length !== expected) throw corrupt('record count differs');
  return out;
}

function isHeaders(value: unknown): value is Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  for (const v of Object.values(value)) if (typeof v !== 'string') return false;
  return true;
}

/** Decodes a v1 segment (JSON lines, written before bus/0004), checking its shape; `expected` is the stored record count. */
export function decodeJsonLines(text: string, expected: number): StoredRecord[] {
  let parsed: unknown;
  try {
    // One JSON.parse for the whole segment: joining the lines with commas makes it one array.
    parsed = JSON.parse(`[${text.replaceAll('\n', ',')}]`);
  } catch {
    throw corrupt('not JSON lines');
  }
  if (!Array.isArray(parsed) || parsed.length !== expected) throw corrupt('record count differs');
  const out = new Array<StoredRecord>(parsed.length);
  for (let i = 0; i < parsed.length; i += 1) {
    const r: unknown = parsed[i];
    if (!Array.isArray(r) || typeof r[0] !== 'string' || typeof r[1] !== 'string')
      throw corrupt('bad record');
    const headers: unknown = r[2];
    if (headers !== undefined && !isHeaders(headers)) throw corrupt('bad headers');
    out[i] = { key: r[0], value: r[1], headers: headers ?? NO_HEADERS };
  }
  return out;
}
