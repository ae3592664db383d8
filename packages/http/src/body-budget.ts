/**
 * A bound on the request bodies one process holds in memory at once, across all connections. The byte limit
 * of one body (`MAX_PAYLOAD_SIZE`) does not bound memory: ten thousand connections each sending a body just
 * under it would hold gigabytes before any of them is authenticated, and an out-of-memory crash loses every
 * event accepted but not yet answered. With a budget, a body that does not fit is refused with 503 and
 * `Retry-After` (senders retry; nothing accepted is lost), and the process stays within its memory.
 *
 * Bytes are reserved as they arrive (all at once when `Content-Length` is declared, so a large declared body
 * is refused before it is read) and held until the response is closed: the parsed events live as long as
 * that. A reservation is never larger than one body's limit, so a budget of at least `MAX_PAYLOAD_SIZE`
 * always lets a lone request through.
 */
export class BodyBudget {
  #used = 0;

  constructor(readonly limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 1) {
      throw new RangeError(`body budget must be a positive integer of bytes, got ${limitBytes}`);
    }
  }

  /** Bytes reserved right now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Reserves `bytes` if they fit; false (and nothing reserved) if not. */
  tryReserve(bytes: number): boolean {
    if (this.#used + bytes > this.limitBytes) return false;
    this.#used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** What a body read with a budget holds its bytes until: the response (its `close` event). */
export interface BudgetHold {
  readonly budget: BodyBudget;
  /** The request's response: the reservation is released when it closes (sent, or the connection dropped). */
  readonly until: {
    readonly closed: boolean;
    once(event: 'close', listener: () => void): unknown;
  };
}
