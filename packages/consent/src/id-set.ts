/**
 * A compact, serialisable set of positive integer ids (IAB vendor ids), used inside the canonical consent
 * state that travels with every event. A TC string that consents to ~1,000 vendors would otherwise add several
 * kilobytes of JSON to each event; like the TC string itself we pick whichever of two encodings is shorter:
 *
 * - `b:<base64url bitfield>`: bit n-1 (most significant first, 6 bits per character) set means id n is present;
 * - `r:<ranges>`: comma-separated ids or inclusive `start-end` runs in ascending order (`r:` alone is empty).
 *
 * Membership is answered without decoding the whole set.
 */

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export type IdSet = string;

/** Matches exactly the strings `encodeIdSet` can produce (the zod schema for the state uses it). */
export const ID_SET_PATTERN =
  /^(?:b:[A-Za-z0-9_-]*|r:(?:[1-9]\d{0,5}(?:-[1-9]\d{0,5})?(?:,[1-9]\d{0,5}(?:-[1-9]\d{0,5})?)*)?)$/;

export function encodeIdSet(ids: Iterable<number>): IdSet {
  const sorted = [...new Set(ids)].filter((id) => Number.isInteger(id) && id > 0).sort((a, b) => a - b);
  const ranges = encodeRanges(sorted);
  const last = sorted[sorted.length - 1];
  if (last === undefined) return ranges;
  const bitfield = encodeBitfield(sorted, last);
  return bitfield.length < ranges.length ? bitfield : ranges;
}

export function idSetHas(set: IdSet, id: number): boolean {
  if (!Number.isInteger(id) || id < 1) return false;
  if (set.startsWith('b:')) {
    const index = id - 1;
    const char = set[2 + Math.floor(index / 6)];
    if (char === undefined) return false;
    const value = BASE64URL.indexOf(char);
    return value >= 0 && ((value >> (5 - (index % 6))) & 1) === 1;
  }
  if (!set.startsWith('r:') || set.length === 2) return false;
  for (const part of set.slice(2).split(',')) {
    const dash = part.indexOf('-');
    const start = Number(dash < 0 ? part : part.slice(0, dash));
    const end = dash < 0 ? start : Number(part.slice(dash + 1));
    if (id < start) return false; // ascending runs: nothing further can match
    if (id <= end) return true;
  }
  return false;
}

export function decodeIdSet(set: IdSet): number[] {
  const ids: number[] = [];
  if (set.startsWith('b:')) {
    for (let i = 2; i < set.length; i++) {
      const value = BASE64URL.indexOf(set.charAt(i));
      for (let bit = 0; bit < 6; bit++) {
        if (((value >> (5 - bit)) & 1) === 1) ids.push((i - 2) * 6 + bit + 1);
      }
    }
    return ids;
  }
  if (set.length <= 2) return ids;
  for (const part of set.slice(2).split(',')) {
    const dash = part.indexOf('-');
    const start = Number(dash < 0 ? part : part.slice(0, dash));
    const end = dash < 0 ? start : Number(part.slice(dash + 1));
    for (let id = start; id <= end; id++) ids.push(id);
  }
  return ids;
}

function encodeRanges(sorted: readonly number[]): string {
  const runs: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i] as number;
    let end = start;
    while (sorted[i + 1] === end + 1) {
      end += 1;
      i += 1;
    }
    runs.push(end === start ? String(start) : `${start}-${end}`);
    i += 1;
  }
  return `r:${runs.join(',')}`;
}

function encodeBitfield(sorted: readonly number[], maxId: number): string {
  const values = new Uint8Array(Math.ceil(maxId / 6));
  for (const id of sorted) {
    const index = id - 1;
    const slot = Math.floor(index / 6);
    values[slot] = (values[slot] ?? 0) | (1 << (5 - (index % 6)));
  }
  let out = 'b:';
  for (const value of values) out += BASE64URL.charAt(value);
  return out;
}
