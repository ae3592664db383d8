import { BusError } from '../errors';
import type { OutgoingMessage } from '../port';

/**
 * The records of one segment (one group commit's messages for one partition), stored as a single text
 * row: JSON lines, one `[key, value]` or `[key, value, headers]` array per message. ARCHITECTURE §2 measured
 * why: on PGlite one row per message tops out near 17K rows/s and bytea crosses into WASM as hex, while one
 * text row per segment moves ~200K events/s. JSON.stringify escapes every newline inside a string, so a
 * raw `\n` only ever separates records.
 */
export interface StoredRecord {
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export function encodeRecords(messages: readonly OutgoingMessage[]): string {
  const lines = new Array<string>(messages.length);
  for (let i = 0; i < messages.length; i += 1) {
    const m = messages[i] as OutgoingMessage;
    lines[i] =
      m.headers === undefined || Object.keys(m.headers).length === 0
        ? JSON.stringify([m.key, m.value])
        : JSON.stringify([m.key, m.value, m.headers]);
  }
  return lines.join('\n');
}

function corrupt(reason: string): BusError {
  return new BusError('bus_invalid_message', `a stored bus segment is corrupt: ${reason}`);
}

function isHeaders(value: unknown): value is Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  for (const v of Object.values(value)) if (typeof v !== 'string') return false;
  return true;
}

/** Decodes a segment written by `encodeRecords`, checking its shape; `expected` is the stored record count. */
export function decodeRecords(text: string, expected: number): StoredRecord[] {
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
