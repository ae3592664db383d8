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
  /** Bytes each holder (a client address) has reserved; only holders with a reservation are kept. */
  readonly #byHolder = new Map<string, number>();

  /**
   * `perHolderBytes`: the most one holder (`tryReserve`'s second argument, e.g. a client's address) may
   * hold at once, so that one sender with slow bodies cannot take the whole budget. Default: no share.
   */
  constructor(
    readonly limitBytes: number,
    readonly perHolderBytes: number = limitBytes,
  ) {
    for (const [name, value] of [
      ['body budget', limitBytes],
      ['per-holder share', perHolderBytes],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${name} must be a positive integer of bytes, got ${value}`);
      }
    }
  }

  /** Bytes reserved right now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Bytes `holder` has reserved right now. */
  heldBy(holder: string): number {
    return this.#byHolder.get(holder) ?? 0;
  }

  /** Reserves `bytes` if they fit, in the budget and in `holder`'s share; false (nothing reserved) if not. */
  tryReserve(bytes: number, holder?: string): boolean {
    if (this.#used + bytes > this.limitBytes) return false;
    if (holder !== undefined) {
      const held = this.heldBy(holder) + bytes;
      if (held > this.perHolderBytes) return false;
      this.#byHolder.set(holder, held);
    }
    this.#used += bytes;
    return true;
  }

  release(bytes: number, holder?: string): void {
    this.#used = Math.max(0, this.#used - bytes);
    if (holder === undefined) return;
    const held = this.heldBy(holder) - bytes;
    if (held > 0) this.#byHolder.set(holder, held);
    else this.#byHolder.delete(holder);
  }
}

/** What a body read with a budget holds its bytes until: the response (its `close` event). */
export interface BudgetHold {
  readonly budget: BodyBudget;
  /** Whose share the bytes count against (`BodyBudget.perHolderBytes`), e.g. the client's address. */
  readonly holder?: string;
  /** The request's response: the reservation is released when it closes (sent, or the connection dropped). */
  readonly until: {
    readonly closed: boolean;
    once(event: 'close', listener: () => void): unknown;
  };
}
