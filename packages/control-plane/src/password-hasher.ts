import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Password hashing port. The Management API's login path depends on this interface (not on scrypt), so tests
 * can observe that an unknown email still costs a full `verify` (the constant-work failure path) and can run
 * with a cheap cost.
 */
export interface PasswordHasher {
  /** Encodes a new hash with a fresh 16-byte salt and the hasher's cost (PHC-style string, params included). */
  hash(password: string): Promise<string>;
  /**
   * True when `password` matches `encoded`. Uses the parameters stored in `encoded`, so hashes made with an
   * older cost keep verifying. A malformed or out-of-bounds `encoded` returns false after doing the same work
   * as a real check.
   */
  verify(password: string, encoded: string): Promise<boolean>;
  /** True when `encoded` was made with a cost below this hasher's (rehash after the next successful login). */
  needsRehash(encoded: string): boolean;
}

export interface ScryptCost {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** N = 2^15, r = 8, p = 1: about 32 MiB and tens of milliseconds per hash (OWASP's scrypt minimum). */
export const DEFAULT_SCRYPT_COST: ScryptCost = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

export interface ScryptHasherOptions {
  /**
   * Defaults to `DEFAULT_SCRYPT_COST`. Lower it in tests only; production code never passes this (the
   * Management API's config has no setting for it).
   */
  readonly cost?: ScryptCost;
}

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Stored parameters are bounded so a tampered row cannot make a login allocate gigabytes. */
const MAX_LOG_N = 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY_BYTES = 512 * 1024 * 1024;

const ENCODED = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/;

interface Parsed {
  readonly cost: ScryptCost;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function memoryFor(cost: ScryptCost): number {
  return 128 * cost.r * (cost.N + cost.p + 2);
}

function checkCost(cost: ScryptCost): boolean {
  const logN = Math.log2(cost.N);
  return (
    Number.isInteger(logN) &&
    logN >= 1 &&
    logN <= MAX_LOG_N &&
    Number.isInteger(cost.r) &&
    cost.r >= 1 &&
    cost.r <= MAX_R &&
    Number.isInteger(cost.p) &&
    cost.p >= 1 &&
    cost.p <= MAX_P &&
    memoryFor(cost) <= MAX_MEMORY_BYTES
  );
}

function parse(encoded: string): Parsed | undefined {
  const match = ENCODED.exec(encoded);
  if (match === null) return undefined;
  const [, ln, r, p, salt, hash] = match;
  if (ln === undefined || r === undefined || p === undefined || salt === undefined || hash === undefined)
    return undefined;
  const cost = { N: 2 ** Number(ln), r: Number(r), p: Number(p) };
  if (!checkCost(cost)) return undefined;
  return { cost, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
}

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = {
    N: cost.N,
    r: cost.r,
    p: cost.p,
    maxmem: memoryFor(cost) + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, options, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

function encode(cost: ScryptCost, salt: Buffer, hash: Buffer): string {
  const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${Math.log2(cost.N)},r=${cost.r},p=${cost.p}$${b64(salt)}$${b64(hash)}`;
}

/** scrypt (RFC 7914) from `node:crypto` with a per-password random salt; the cost is stored with the hash. */
export function createScryptHasher(options: ScryptHasherOptions = {}): PasswordHasher {
  const cost = options.cost ?? DEFAULT_SCRYPT_COST;
  if (!checkCost(cost)) {
    throw new RangeError('scrypt cost must have N a power of two ≤ 2^20, 1 ≤ r ≤ 32, 1 ≤ p ≤ 16');
  }
  // Stands in for a malformed stored hash so that path costs what a real verification costs.
  const placeholderSalt = randomBytes(SALT_BYTES);

  return Object.freeze({
    async hash(password: string): Promise<string> {
      const salt = randomBytes(SALT_BYTES);
      return encode(cost, salt, await derive(password, salt, cost));
    },
    async verify(password: string, encoded: string): Promise<boolean> {
      const parsed = parse(encoded);
      if (parsed === undefined) {
        await derive(password, placeholderSalt, cost);
        return false;
      }
      const candidate = await derive(password, parsed.salt, parsed.cost);
      return candidate.length === parsed.hash.length && timingSafeEqual(candidate, parsed.hash);
    },
    needsRehash(encoded: string): boolean {
      const parsed = parse(encoded);
      return (
        parsed === undefined || parsed.cost.N < cost.N || parsed.cost.r < cost.r || parsed.cost.p < cost.p
      );
    },
  });
}
