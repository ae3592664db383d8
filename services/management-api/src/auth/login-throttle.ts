import { createHash } from 'node:crypto';
import type { Cache } from '@signal/cache';

export interface LoginThrottleOptions {
  /** Failures allowed per account + client address inside `windowMs` before the pair is locked. Default 5. */
  readonly maxFailures?: number;
  /** Default 15 minutes. */
  readonly windowMs?: number;
  /** First lock lasts this long, doubling with every further failure. Default 1 minute. */
  readonly baseLockMs?: number;
  /** Longest lock. Default 15 minutes. */
  readonly maxLockMs?: number;
  /**
   * Failures allowed per account inside `accountWindowMs`, from any mix of client addresses, before the
   * account is locked for every address. Default 10 (PCI DSS 4.0 8.3.4: "not more than 10 attempts").
   */
  readonly maxAccountFailures?: number;
  /** Default 1 hour. */
  readonly accountWindowMs?: number;
  /** How long an account lock lasts. Default 30 minutes (PCI DSS 8.3.4: "a minimum of 30 minutes"). */
  readonly accountLockMs?: number;
}

/** One login (or password-change) attempt that `begin` let through or refused. */
export interface LoginAttempt {
  /** 0: check the password. Otherwise the attempt is refused (answer 429) for this many more milliseconds. */
  readonly lockedForMs: number;
  /** The password was wrong (or the login failed otherwise): returns the lock now in force in ms, 0 if none. */
  failed(): Promise<number>;
  /** The password was right: the pair's and the account's failure counts start again. */
  succeeded(): Promise<void>;
}

type CacheSlice = Pick<Cache, 'get' | 'set' | 'setIfAbsent' | 'getAndDelete' | 'delete' | 'incrementWindow'>;

/** One tier of the throttle (a pair, or an account): its limits and its cache keys. */
interface Tier {
  readonly maxFailures: number;
  readonly windowMs: number;
  /** The lock after `count` failures (count ≥ maxFailures). */
  lockMs(count: number): number;
  readonly failures: string;
  readonly lock: string;
  /**
   * Set with each lock (value: when the lock ends): the one attempt over the limit that may try again once
   * the lock is over. Consumed atomically, so a burst after a lock still gets a single password check.
   */
  readonly probe: string;
}

/** How long a burst over the limit is told to wait while another attempt of it is being checked. */
const BUSY_MS = 1000;

const REFUSED = async () => 0;
const NOTHING = async () => {};

/**
 * Lockout after repeated failed logins, shared through the cache so every replica sees it, on two tiers:
 * - per (typed email, client address): `maxFailures` in `windowMs`, then a lock of `baseLockMs` doubling with
 *   every further failure up to `maxLockMs` (slows one source down quickly);
 * - per account, whatever the address: `maxAccountFailures` in `accountWindowMs`, then `accountLockMs` for
 *   every address (an attacker rotating addresses gets no more guesses than one address). Anyone can lock an
 *   account this way for `accountLockMs`: the price PCI DSS 8.3.4 asks for, in exchange for bounded guessing.
 *
 * An attempt is counted when it begins, before its password is checked, with the cache's atomic increment, so
 * of N concurrent attempts only those within the limit get a password check (counting afterwards let a burst
 * through before the first failure landed). Past the limit, each ended lock lets exactly one attempt try
 * again (its probe); it fails into the next, longer lock or succeeds. A success clears the counts. Keys hold
 * a SHA-256 of the email (and address), never the email itself, and exist for unknown emails exactly as for
 * known ones, so a lock reveals nothing about which emails exist. Cache failures propagate: the caller
 * refuses the login (fail closed).
 */
export class LoginThrottle {
  readonly #cache: CacheSlice;
  readonly #clock: () => Date;
  readonly #options: Required<LoginThrottleOptions>;

  constructor(cache: CacheSlice, clock: () => Date, options: LoginThrottleOptions = {}) {
    this.#cache = cache;
    this.#clock = clock;
    this.#options = {
      maxFailures: options.maxFailures ?? 5,
      windowMs: options.windowMs ?? 15 * 60_000,
      baseLockMs: options.baseLockMs ?? 60_000,
      maxLockMs: options.maxLockMs ?? 15 * 60_000,
      maxAccountFailures: options.maxAccountFailures ?? 10,
      accountWindowMs: options.accountWindowMs ?? 60 * 60_000,
      accountLockMs: options.accountLockMs ?? 30 * 60_000,
    };
  }

  #tiers(email: string, ip: string): readonly [Tier, Tier] {
    const o = this.#options;
    const account = email.trim().toLowerCase();
    const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 40);
    const pair = digest(`${account}\0${ip}`);
    const acct = digest(`account\0${account}`);
    return [
      {
        maxFailures: o.maxFailures,
        windowMs: o.windowMs,
        lockMs: (count) => Math.min(o.maxLockMs, o.baseLockMs * 2 ** Math.min(20, count - o.maxFailures)),
        failures: `login-fail:${pair}`,
        lock: `login-lock:${pair}`,
        probe: `login-probe:${pair}`,
      },
      {
        maxFailures: o.maxAccountFailures,
        windowMs: o.accountWindowMs,
        lockMs: () => o.accountLockMs,
        failures: `login-account-fail:${acct}`,
        lock: `login-account-lock:${acct}`,
        probe: `login-account-probe:${acct}`,
      },
    ];
  }

  async #remaining(lockKey: string): Promise<number> {
    const until = Number(await this.#cache.get(lockKey));
    if (!Number.isFinite(until)) return 0;
    return Math.max(0, until - this.#clock().getTime());
  }

  /** Locks the tier after `count` failures (unless a longer lock is in force) and arms its probe. */
  async #lock(tier: Tier, count: number): Promise<number> {
    if (count < tier.maxFailures) return 0;
    const ms = tier.lockMs(count);
    const current = await this.#remaining(tier.lock);
    if (current >= ms) return current;
    const until = this.#clock().getTime() + ms;
    await this.#cache.set(tier.lock, String(until), { ttlMs: ms });
    await this.#cache.set(tier.probe, String(until), { ttlMs: ms + tier.windowMs });
    return ms;
  }

  /**
   * Takes the tier's probe for an attempt over its limit: 0 when taken, else how long to wait. A probe armed
   * for a lock that has not ended yet (a lock set while this attempt was on its way) is put back.
   */
  async #takeProbe(tier: Tier): Promise<number> {
    const armed = await this.#cache.getAndDelete(tier.probe);
    if (armed === null) return BUSY_MS;
    const wait = Number(armed) - this.#clock().getTime();
    if (!(wait > 0)) return 0;
    await this.#cache.setIfAbsent(tier.probe, armed, wait + tier.windowMs);
    return wait;
  }

  /** Starts an attempt: refused while a tier is locked or out of attempts, else counted and let through. */
  async begin(email: string, ip: string): Promise<LoginAttempt> {
    const tiers = this.#tiers(email, ip);
    const lockedForMs = Math.max(...(await Promise.all(tiers.map((tier) => this.#remaining(tier.lock)))));
    if (lockedForMs > 0) return { lockedForMs, failed: REFUSED, succeeded: NOTHING };

    const counts = await Promise.all(
      tiers.map(async (tier) => (await this.#cache.incrementWindow(tier.failures, tier.windowMs)).count),
    );
    const probes: Tier[] = [];
    for (const [i, tier] of tiers.entries()) {
      if ((counts[i] ?? 0) <= tier.maxFailures) continue;
      const wait = await this.#takeProbe(tier);
      if (wait > 0) {
        // Refused: a probe taken from another tier goes back for the next attempt.
        for (const taken of probes) await this.#cache.setIfAbsent(taken.probe, '0', taken.windowMs);
        return { lockedForMs: wait, failed: REFUSED, succeeded: NOTHING };
      }
      probes.push(tier);
    }
    return {
      lockedForMs: 0,
      failed: async () => {
        const locks = await Promise.all(tiers.map((tier, i) => this.#lock(tier, counts[i] ?? 0)));
        return Math.max(...locks);
      },
      succeeded: async () => {
        await Promise.all(
          tiers.flatMap((tier) => [this.#cache.delete(tier.failures), this.#cache.delete(tier.probe)]),
        );
      },
    };
  }
}
