/**
 * A circuit breaker per integration, so a failing vendor is not hammered and its backlog waits instead of
 * occupying the worker. Closed: requests flow; `failureThreshold` consecutive retryable failures (5xx, 429,
 * timeouts, network errors) open it. Open: nothing is sent for `openMs` (doubling on every re-open, up to
 * `maxOpenMs`). Then half-open: exactly one probe request is let through; success closes the circuit,
 * failure opens it again. Any success resets the failure count.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  readonly failureThreshold: number;
  readonly openMs: number;
  readonly maxOpenMs: number;
  readonly now?: () => number;
}

export type Permit =
  | {
      readonly allowed: true /** This request is the half-open probe: send one small request. */;
      readonly probe: boolean;
    }
  | { readonly allowed: false; readonly retryInMs: number };

export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  readonly #now: () => number;
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedUntil = 0;
  #reopenCount = 0;
  #probeInFlight = false;

  constructor(options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.failureThreshold) || options.failureThreshold < 1) {
      throw new RangeError('failureThreshold must be a positive integer');
    }
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.#state === 'open' && this.#now() >= this.#openedUntil) return 'half_open';
    return this.#state;
  }

  permit(): Permit {
    const state = this.state;
    if (state === 'closed') return { allowed: true, probe: false };
    if (state === 'open') return { allowed: false, retryInMs: Math.max(1, this.#openedUntil - this.#now()) };
    if (this.#probeInFlight) return { allowed: false, retryInMs: Math.max(1, this.#options.openMs) };
    this.#state = 'half_open';
    this.#probeInFlight = true;
    return { allowed: true, probe: true };
  }

  /** The vendor accepted (or refused permanently: it answered, so it is up). */
  recordSuccess(): CircuitState {
    this.#failures = 0;
    this.#reopenCount = 0;
    this.#probeInFlight = false;
    this.#state = 'closed';
    return this.#state;
  }

  /** A retryable failure (timeout, network error, 5xx, 429). Returns the state after it. */
  recordFailure(): CircuitState {
    const wasProbe = this.#probeInFlight || this.#state === 'half_open';
    this.#probeInFlight = false;
    this.#failures += 1;
    if (wasProbe || this.#failures >= this.#options.failureThreshold) this.#open();
    return this.#state;
  }

  /** Releases a probe permit that was not used (nothing was sent). */
  release(): void {
    this.#probeInFlight = false;
  }

  #open(): void {
    const duration = Math.min(this.#options.maxOpenMs, this.#options.openMs * 2 ** this.#reopenCount);
    this.#reopenCount += 1;
    this.#state = 'open';
    this.#openedUntil = this.#now() + duration;
    this.#failures = 0;
  }
}
