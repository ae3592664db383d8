const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Reads big-endian bit fields from one base64url segment of a TC or GPP string. Used only by the pre-decode
 * work guards: it reads, never expands, and answers null past the end instead of throwing.
 */
export class BitReader {
  private readonly values: number[] = [];
  private position: number;

  constructor(segment: string, start = 0) {
    for (const char of segment) this.values.push(BASE64URL.indexOf(char));
    this.position = start;
  }

  /** False when the segment holds a character outside base64url (the decoder will reject it). */
  get valid(): boolean {
    return !this.values.includes(-1);
  }

  private bit(index: number): number {
    const value = this.values[Math.floor(index / 6)] ?? 0;
    return (value >> (5 - (index % 6))) & 1;
  }

  private get length(): number {
    return this.values.length * 6;
  }

  /** Next `length` bits as an unsigned integer, or null past the end. */
  read(length: number): number | null {
    if (this.position + length > this.length) return null;
    let out = 0;
    for (let i = 0; i < length; i++) out = out * 2 + this.bit(this.position + i);
    this.position += length;
    return out;
  }

  skip(length: number): void {
    this.position += length;
  }

  /**
   * Next Fibonacci-coded integer (GPP: bit i adds the i-th Fibonacci number 1, 2, 3, 5, …; "11" ends it),
   * or null past the end or when the value exceeds `limit`.
   */
  readFibonacci(limit: number): number | null {
    let value = 0;
    let previous = 1;
    let current = 1;
    let lastBit = 0;
    while (this.position < this.length) {
      const bit = this.bit(this.position);
      this.position += 1;
      if (bit === 1 && lastBit === 1) return value;
      if (bit === 1) value += current;
      if (value > limit) return null;
      [previous, current] = [current, previous + current];
      lastBit = bit;
    }
    return null;
  }
}
