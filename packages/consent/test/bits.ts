/** Test helpers that write TC / GPP bit layouts by hand, to craft strings no CMP would produce. */

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export class BitWriter {
  private bits = '';

  int(value: number, length: number): this {
    this.bits += value.toString(2).padStart(length, '0');
    return this;
  }

  raw(bits: string): this {
    this.bits += bits;
    return this;
  }

  /** Fibonacci code as GPP uses it (Zeckendorf bits, least significant first, then a closing 1). */
  fibonacci(value: number): this {
    const fib = [1, 2];
    while ((fib[fib.length - 1] ?? 0) + (fib[fib.length - 2] ?? 0) <= value) {
      fib.push((fib[fib.length - 1] ?? 0) + (fib[fib.length - 2] ?? 0));
    }
    const out = new Array<string>(fib.length).fill('0');
    let rest = value;
    for (let i = fib.length - 1; i >= 0; i--) {
      const f = fib[i] ?? 0;
      if (f <= rest) {
        out[i] = '1';
        rest -= f;
      }
    }
    const code = out.join('').replace(/0+$/, '');
    this.bits += `${code}1`;
    return this;
  }

  toBase64Url(): string {
    let bits = this.bits;
    while (bits.length % 6 !== 0) bits += '0';
    let out = '';
    for (let i = 0; i < bits.length; i += 6)
      out += BASE64URL.charAt(Number.parseInt(bits.slice(i, i + 6), 2));
    return out;
  }
}

export interface CraftedRange {
  readonly start: number;
  readonly end: number;
}

/**
 * A TCF v2 core string: vendor consents range-encoded as `consentRanges`, no LI, and one publisher
 * restriction per entry of `restrictions` (purpose, type, ranges).
 */
export function craftTcString(options: {
  consentRanges?: readonly CraftedRange[];
  purposeConsents?: readonly number[];
  restrictions?: readonly { purpose: number; type: number; ranges: readonly CraftedRange[] }[];
}): string {
  const w = new BitWriter();
  const deciseconds = Math.round(Date.UTC(2024, 0, 1) / 100);
  w.int(2, 6).int(deciseconds, 36).int(deciseconds, 36);
  w.int(10, 12).int(1, 12).int(1, 6); // cmp id, cmp version, consent screen
  w.int(4, 6).int(13, 6); // language EN
  w.int(100, 12).int(4, 6).int(0, 1).int(0, 1).int(0, 12); // vendor list, policy 4, service specific, stacks, SF
  let purposes = '';
  for (let p = 1; p <= 24; p++) purposes += options.purposeConsents?.includes(p) ? '1' : '0';
  w.raw(purposes).int(0, 24).int(0, 1).int(3, 6).int(4, 6); // consents, LI, P1 treatment, country DE
  const ranges = options.consentRanges ?? [];
  const maxId = ranges.reduce((max, range) => Math.max(max, range.end), 0);
  w.int(maxId, 16).int(1, 1).int(ranges.length, 12);
  for (const range of ranges) w.int(1, 1).int(range.start, 16).int(range.end, 16);
  w.int(0, 16).int(0, 1); // no LI vendors (empty bitfield)
  const restrictions = options.restrictions ?? [];
  w.int(restrictions.length, 12);
  for (const restriction of restrictions) {
    w.int(restriction.purpose, 6).int(restriction.type, 2).int(restriction.ranges.length, 12);
    for (const range of restriction.ranges) w.int(1, 1).int(range.start, 16).int(range.end, 16);
  }
  return w.toBase64Url();
}
