import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket';

describe('token bucket', () => {
  it('allows a one-second burst, then spaces requests at the rate', () => {
    let t = 0;
    const bucket = new TokenBucket(10, () => t);
    expect(bucket.reserve(10)).toBe(0);
    expect(bucket.reserve(5)).toBe(500);
    t += 500;
    expect(bucket.reserve(1)).toBe(100);
    t += 10_000;
    expect(bucket.reserve(10)).toBe(0);
  });
});
