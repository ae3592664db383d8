import { type CryptoHealth, cryptoHealth } from '@signal/crypto';
import type { EnvelopeKeyring } from './envelope-keyring';

/** `/health/crypto` in envelope mode: the contract body, plus `checks.kms_canary`. */
export type EnvelopeCryptoHealth = CryptoHealth & {
  readonly checks: CryptoHealth['checks'] & { readonly kms_canary: boolean };
};

export interface EnvelopeHealthOptions {
  /** The provider as configured (`aws-kms`, …), reported as `provider`. */
  readonly providerName: string;
  /** How long a canary result is reused. Default 30 000 ms. */
  readonly canaryCacheMs?: number;
  readonly now?: () => number;
}

export interface EnvelopeHealth {
  /** Sync (readiness checks call it): the last canary result, refreshed in the background when older than the cache time. */
  health(): EnvelopeCryptoHealth;
  /** Runs a canary now and remembers it (start-up). */
  refresh(): Promise<boolean>;
}

/**
 * Health of an envelope keyring. `key_valid` and `round_trip` are the local checks of `cryptoHealth` on the
 * active general DEK: they turn false when the process can no longer seal (its active DEK could not be
 * re-verified within the TTL). `kms_canary` is a wrap/unwrap of a random key under the KEK, cached for ~30 s
 * so probes do not hammer the KMS. A failing canary alone does not fail readiness: during a KMS hiccup the
 * DEK cache keeps every replica serving, and pulling them all from the load balancer would turn a hiccup
 * into an outage. It is reported so alerting sees it at once.
 */
export function envelopeHealth(keyring: EnvelopeKeyring, options: EnvelopeHealthOptions): EnvelopeHealth {
  const cacheMs = options.canaryCacheMs ?? 30_000;
  const now = options.now ?? Date.now;
  let last: { readonly at: number; readonly ok: boolean } | undefined;
  let running: Promise<boolean> | undefined;

  function refresh(): Promise<boolean> {
    running ??= keyring
      .canary()
      .then((ok) => {
        last = { at: now(), ok };
        return ok;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  }

  return {
    refresh,
    health() {
      if (last === undefined || now() - last.at > cacheMs) {
        refresh().catch(() => undefined);
      }
      let local: CryptoHealth;
      try {
        local = cryptoHealth(keyring, { provider: options.providerName });
      } catch {
        local = {
          status: 'unhealthy',
          provider: options.providerName,
          key_version: 1,
          dual_key_mode: false,
          checks: { key_valid: false, round_trip: false },
        };
      }
      return { ...local, checks: { ...local.checks, kms_canary: last?.ok ?? false } };
    },
  };
}
