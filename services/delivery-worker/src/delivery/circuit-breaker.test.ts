import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker';

function breaker() {
  let t = 0;
  const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, maxOpenMs: 4000, now: () => t });
  return { b, advance: (ms: number) => (t += ms) };
}

describe('circuit breaker', () => {
  it('opens after N consecutive retryable failures; a success in between resets the count', () => {
    const { b } = breaker();
    b.recordFailure();
    b.recordFailure();
    b.recordSuccess();
    b.recordFailure();
    b.recordFailure();
    expect(b.state).toBe('closed');
    expect(b.recordFailure()).toBe('open');
    expect(b.permit()).toEqual({ allowed: false, retryInMs: 1000 });
  });

  it('lets exactly one probe through when half-open; success closes, failure re-opens for longer', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i += 1) b.recordFailure();
    advance(1000);
    expect(b.state).toBe('half_open');
    expect(b.permit()).toEqual({ allowed: true, probe: true });
    expect(b.permit().allowed).toBe(false);
    expect(b.recordFailure()).toBe('open');
    expect(b.permit()).toEqual({ allowed: false, retryInMs: 2000 });
    advance(2000);
    expect(b.permit()).toEqual({ allowed: true, probe: true });
    expect(b.recordSuccess()).toBe('closed');
    expect(b.permit()).toEqual({ allowed: true, probe: false });
  });

  it('caps the open period', () => {
    const { b, advance } = breaker();
    for (let round = 0; round < 6; round += 1) {
      for (let i = 0; i < 3; i += 1) b.recordFailure();
      const permit = b.permit();
      expect(permit.allowed).toBe(false);
      if (!permit.allowed) expect(permit.retryInMs).toBeLessThanOrEqual(4000);
      advance(4000);
      b.permit();
    }
  });
});
