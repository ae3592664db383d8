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
}

/**
 * Lockout with exponential backoff after repeated failed logins, per (typed email, client address), shared
 * through the cache so every replica sees it. Keys hold a SHA-256 of the pair, never the email itself. A
 * locked pair is refused before any password is checked; the lock names no user, so it reveals nothing about
 * which emails exist. Cache failures propagate: the caller refuses the login (fail closed).
 */
export class LoginThrottle {
  readonly #cache: Pick<Cache, 'get' | 'set' | 'delete' | 'incrementWindow'>;
  readonly #clock: () => Date;
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #baseLockMs: number;
  readonly #maxLockMs: number;

  constructor(
    cache: Pick<Cache, 'get' | 'set' | 'delete' | 'incrementWindow'>,
    clock: () => Date,
    options: LoginThrottleOptions = {},
  ) {
    this.#cache = cache;
    this.#clock = clock;
    this.#maxFailures = options.maxFailures ?? 5;
    this.#windowMs = options.windowMs ?? 15 * 60_000;
    this.#baseLockMs = options.baseLockMs ?? 60_000;
    this.#maxLockMs = options.maxLockMs ?? 15 * 60_000;
  }

  #subject(email: string, ip: string): string {
    return createHash('sha256')
      .update(`${email.trim().toLowerCase()}\0${ip}`, 'utf8')
      .digest('hex')
      .slice(0, 40);
  }

  /** Milliseconds the pair stays locked; 0 when it may try. */
  async lockedForMs(email: string, ip: string): Promise<number> {
    const until = Number(await this.#cache.get(`login-lock:${this.#subject(email, ip)}`));
    if (!Number.isFinite(until)) return 0;
    return Math.max(0, until - this.#clock().getTime());
  }

  /** Counts a failure; returns the lock now in force in ms (0 when none). */
  async recordFailure(email: string, ip: string): Promise<number> {
    const subject = this.#subject(email, ip);
    const { count } = await this.#cache.incrementWindow(`login-fail:${subject}`, this.#windowMs);
    if (count < this.#maxFailures) return 0;
    const lockMs = Math.min(this.#maxLockMs, this.#baseLockMs * 2 ** Math.min(20, count - this.#maxFailures));
    await this.#cache.set(`login-lock:${subject}`, String(this.#clock().getTime() + lockMs), {
      ttlMs: lockMs,
    });
    return lockMs;
  }

  async reset(email: string, ip: string): Promise<void> {
    const subject = this.#subject(email, ip);
    await this.#cache.delete(`login-fail:${subject}`);
    await this.#cache.delete(`login-lock:${subject}`);
  }
}
