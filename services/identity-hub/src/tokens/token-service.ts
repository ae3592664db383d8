import { CryptoError, type CryptoErrorCode, type CryptoService } from '@signal/crypto';
import {
  type ClaimsInput,
  checkTimes,
  MAX_TOKEN_TTL_SECONDS,
  newClaims,
  parseClaims,
  type TokenClaims,
  tokenContext,
} from './claims';
import { isHostName } from './hosts';
import type { SingleUseStore } from './single-use';

/**
 * Why a token was refused. Label values of `signal_identity_token_rejections_total{reason}` and the reason
 * logged; the client always gets the same generic answer.
 *
 * A token sealed for another audience fails the key commitment exactly like a modified one (the audience is
 * part of the context), so `commitment_mismatch` covers both; `authentication_failed` is a modified chunk
 * behind an intact commitment.
 */
export const TOKEN_REJECTIONS = [
  'malformed',
  'unknown_key',
  'commitment_mismatch',
  'authentication_failed',
  'invalid_claims',
  'expired',
  'not_yet_valid',
  'audience_mismatch',
  'audience_not_served',
  'audience_not_linked',
  'replayed',
  /** The request arrived on a Host the hub does not serve (not a host name, or not in IDENTITY_PUBLIC_HOSTS). */
  'untrusted_host',
  /** Resolve named a pipeline (X-Pipeline-Key) that is unknown or of another org than the token's. */
  'pipeline_mismatch',
] as const;
export type TokenRejection = (typeof TOKEN_REJECTIONS)[number];

/** The text form of a v1 token: prefix, then base64url. Anything else is refused before any crypto runs. */
const TOKEN_SHAPE = /^v1\.[A-Za-z0-9_-]{120,2048}$/;

export type OpenResult =
  | { readonly ok: true; readonly claims: TokenClaims }
  | { readonly ok: false; readonly reason: TokenRejection; readonly cryptoCode?: CryptoErrorCode };

export type ResolveResult = OpenResult;

export interface IssuedToken {
  /** `v1.` + base64url: safe in a URL query without escaping. */
  readonly token: string;
  readonly claims: TokenClaims;
}

export interface TokenServiceOptions {
  readonly crypto: Pick<CryptoService, 'sealText' | 'openText'>;
  readonly singleUse: SingleUseStore;
  /** Token lifetime, 1-120 s. */
  readonly ttlSeconds: number;
  /** Tolerated clock difference between the issuing and the resolving process (default 5 s, at most 60). */
  readonly clockSkewSeconds?: number;
  readonly now?: () => number;
}

export interface TokenService {
  issue(input: ClaimsInput): IssuedToken;
  /**
   * Decrypts for `audience` (the host the token is being redeemed for) and checks claims and times. Does not
   * consume: call `consume` once every other check passed, so a refused request never burns a token.
   */
  open(token: string, audience: string): OpenResult;
  /** Atomically marks the token used: true for the first call only. Rejects when the store is down. */
  consume(claims: TokenClaims): Promise<boolean>;
  /** `open`, then `consume` (`replayed` when it was used before). */
  resolve(token: string, audience: string): Promise<ResolveResult>;
}

/** Cross-domain tokens: v1 ciphertexts of the claims, audience-bound, short-lived, single use. */
export function createTokenService(options: TokenServiceOptions): TokenService {
  const { crypto, singleUse, ttlSeconds } = options;
  const skewSeconds = options.clockSkewSeconds ?? 5;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(`ttlSeconds must be an integer from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  if (!Number.isInteger(skewSeconds) || skewSeconds < 0 || skewSeconds > 60) {
    throw new RangeError('clockSkewSeconds must be an integer from 0 to 60');
  }

  function open(token: string, audience: string): OpenResult {
    if (!TOKEN_SHAPE.test(token)) return { ok: false, reason: 'malformed' };
    if (!isHostName(audience)) return { ok: false, reason: 'audience_not_served' };
    let plaintext: string;
    try {
      plaintext = crypto.openText(token, tokenContext(audience)).toString('utf8');
    } catch (error) {
      const reason = error instanceof CryptoError ? rejectionFor(error.code) : null;
      // A broken key or self-test is this process's fault, not the token's: it surfaces as a 500.
      if (reason === null || !(error instanceof CryptoError)) throw error;
      return { ok: false, reason, cryptoCode: error.code };
    }
    const claims = parseClaims(plaintext);
    if (claims === null) return { ok: false, reason: 'invalid_claims' };
    if (claims.aud !== audience) return { ok: false, reason: 'audience_mismatch' };
    const time = checkTimes(claims, now(), skewSeconds);
    if (time !== 'valid') return { ok: false, reason: time };
    return { ok: true, claims };
  }

  async function consume(claims: TokenClaims): Promise<boolean> {
    // The id must stay spent for as long as any replica accepts the token: until exp + skew on the slowest
    // clock, which may be up to `skew` behind this one, whose clock computes the store's expiry.
    return await singleUse.consume(claims.jti, (claims.exp + 2 * skewSeconds) * 1000);
  }

  return {
    issue(input) {
      const claims = newClaims(input, now(), ttlSeconds);
      return { token: crypto.sealText(JSON.stringify(claims), tokenContext(claims.aud)), claims };
    },
    open,
    consume,
    async resolve(token, audience) {
      const opened = open(token, audience);
      if (!opened.ok) return opened;
      return (await consume(opened.claims)) ? opened : { ok: false, reason: 'replayed' };
    },
  };
}

function rejectionFor(code: CryptoErrorCode): TokenRejection | null {
  switch (code) {
    case 'unknown_key_id':
    case 'key_destroyed':
      return 'unknown_key';
    case 'commitment_mismatch':
      return 'commitment_mismatch';
    case 'authentication_failed':
      return 'authentication_failed';
    case 'invalid_context':
      return 'audience_not_served';
    case 'malformed':
    case 'unknown_version':
    case 'too_large':
      return 'malformed';
    case 'invalid_key':
    case 'self_test_failed':
    case 'key_unavailable':
      return null;
    default:
      return assertNever(code);
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled crypto error code: ${String(value)}`);
}
