import { CacheError } from './errors';

/** Redis caps PX at 2^63-1 ms; in practice anything beyond ~292 million years is a bug. */
const MAX_TTL_MS = Number.MAX_SAFE_INTEGER;

export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new CacheError('invalid_argument', 'cache keys must be non-empty strings');
  }
}

export function checkValue(value: string): void {
  if (typeof value !== 'string') throw new CacheError('invalid_argument', 'cache values must be strings');
}

export function checkTtl(name: string, ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_TTL_MS) {
    throw new CacheError('invalid_argument', `${name} must be a positive whole number of milliseconds`);
  }
}

const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Validates a namespace and returns the prefix applied to every key (`ns:`), or '' without one. */
export function keyPrefix(namespace: string | undefined): string {
  if (namespace === undefined) return '';
  if (!NAMESPACE.test(namespace)) {
    throw new CacheError(
      'invalid_config',
      'cache namespace (SIGNAL_NAMESPACE) must be 1 to 64 letters, digits, _, . or -',
    );
  }
  return `${namespace}:`;
}
