import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type SignalConfig } from '@signal/config';
import {
  type CryptoAuditSink,
  type CryptoHealth,
  type CryptoService,
  createCryptoService,
  createKeyring,
  cryptoHealth,
  type Keyring,
} from '@signal/crypto';
import type { Metrics } from '@signal/telemetry';
import { createSecretFile } from './secret-file';

export interface BootstrapLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface CryptoBootstrapOptions {
  readonly config: SignalConfig;
  readonly logger: BootstrapLogger;
  readonly metrics?: Metrics;
  readonly audit?: CryptoAuditSink;
  /**
   * Embedded mode only: without ENCRYPTION_KEY (and with REQUIRE_ENCRYPTION false) generate a development key
   * once and keep it in SIGNAL_DATA_DIR, so data survives restarts. Production services never do this.
   */
  readonly allowDevelopmentKey?: boolean;
}

export interface CryptoRuntime {
  readonly crypto: CryptoService;
  readonly health: () => CryptoHealth;
  /** Set when the key came from the data directory rather than the configuration. */
  readonly developmentKeyPath: string | null;
}

export const DEV_KEY_FILE = 'development-encryption.key';

function loadDevelopmentKey(dataDir: string): { key: string; path: string; created: boolean } {
  const path = join(dataDir, DEV_KEY_FILE);
  if (existsSync(path)) {
    const key = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(key)) {
      throw new ConfigError([
        `${path} must hold exactly 64 hexadecimal characters; delete it or set ENCRYPTION_KEY`,
      ]);
    }
    return { key, path, created: false };
  }
  const key = randomBytes(32).toString('hex');
  // Durable before anything is encrypted with it; if another process created it meanwhile, use that one.
  if (!createSecretFile(path, `${key}\n`)) return loadDevelopmentKey(dataDir);
  return { key, path, created: true };
}

/**
 * Builds the process's crypto service from configuration: the keyring (current key, previous key in
 * dual-key mode), the start-up self-test (inside createCryptoService: a failing self-test throws and the
 * service does not start), the `crypto.key_loaded`/`crypto.key_rotated` audit events and the
 * `signal_crypto_operations_total` counter.
 */
export function bootstrapCrypto(options: CryptoBootstrapOptions): CryptoRuntime {
  const { config, logger } = options;
  const encryption = config.encryption;
  if (encryption.envelope) {
    throw new ConfigError([
      `ENCRYPTION_PROVIDER=${encryption.provider}${encryption.provider === 'local' ? ' with ENCRYPTION_ENVELOPE=true' : ''} needs envelope encryption, which this process builds with bootstrapCryptoWithKms (it needs the database)`,
    ]);
  }
  let current = encryption.key?.reveal();
  let developmentKeyPath: string | null = null;
  if (current === undefined) {
    if (encryption.requireEncryption || !options.allowDevelopmentKey) {
      throw new ConfigError([
        'ENCRYPTION_KEY is not set: set ENCRYPTION_KEY to 64 hexadecimal characters (generate one with `pnpm signal-cli generate-key`)',
      ]);
    }
    const dev = loadDevelopmentKey(config.dataDir);
    current = dev.key;
    developmentKeyPath = dev.path;
    logger.warn(
      { path: dev.path, created: dev.created },
      'ENCRYPTION_KEY is not set: using a DEVELOPMENT key kept in the data directory. Never run production like this: set ENCRYPTION_KEY (and REQUIRE_ENCRYPTION=true).',
    );
  }
  const keyring = createKeyring({
    current: Buffer.from(current, 'hex'),
    ...(encryption.previousKey ? { previous: Buffer.from(encryption.previousKey.reveal(), 'hex') } : {}),
    provider: encryption.provider,
  });
  const crypto = meteredCryptoService(keyring, options);
  logger.info(
    {
      provider: keyring.provider,
      keyId: keyring.currentKeyId,
      previousKeyId: keyring.previousKeyId,
      dualKeyMode: keyring.dualKeyMode,
    },
    'encryption keys loaded',
  );
  return { crypto, health: () => cryptoHealth(keyring), developmentKeyPath };
}

/**
 * The crypto service of a keyring (direct or envelope), auditing to `options.audit` and counting every seal
 * and open in `signal_crypto_operations_total{op,key_id,result}`.
 */
export function meteredCryptoService(
  keyring: Keyring,
  options: Pick<CryptoBootstrapOptions, 'audit' | 'metrics'>,
): CryptoService {
  const operations = options.metrics?.counter(
    'signal_crypto_operations_total',
    'Encryption and decryption operations',
    ['op', 'key_id', 'result'],
  );
  return createCryptoService({
    keyring,
    ...(options.audit ? { audit: options.audit } : {}),
    ...(operations
      ? { onOperation: (op, keyId, result) => operations.inc({ op, key_id: keyId, result }) }
      : {}),
  });
}

/**
 * `/health/crypto` with what an operator rotating keys needs besides the contract body: how many records
 * still need re-encryption and how many each key holds.
 */
export type RotationAwareCryptoHealth = CryptoHealth & {
  readonly records_under_previous_key?: number;
  /**
   * Stored records per key id: every key this process seals with or holds (the current and previous key, or
   * each data class's active DEK), `plaintext` for legacy unencrypted values and `other` for the rest
   * (per-subject DEKs, keys no longer held). Bounded: one entry per held key, never one per subject.
   */
  readonly records_by_key_id?: Readonly<Record<string, number>>;
};

export interface RotationAwareHealthOptions {
  readonly cacheMs?: number;
  readonly now?: () => number;
  /** Records per key id (`null` = plaintext), e.g. `countRecordsByKeyId` of `@signal/control-plane`. */
  readonly countByKeyId?: () => Promise<ReadonlyMap<string | null, number>>;
}

/**
 * The `/health/crypto` body with, in dual-key mode, `records_under_previous_key`: the number of stored
 * records still encrypted under ENCRYPTION_KEY_PREVIOUS, so an operator knows when the old key can go (0);
 * and, given `countByKeyId`, `records_by_key_id`. The counts are cached (probes run every few seconds) and left
 * out when the database cannot answer, so a database outage does not make the crypto check lie either way.
 */
export function rotationAwareCryptoHealth(
  runtime: Pick<CryptoRuntime, 'crypto' | 'health'>,
  countUnderKey: (keyId: string) => Promise<number>,
  options: RotationAwareHealthOptions = {},
): () => Promise<RotationAwareCryptoHealth> {
  const cacheMs = options.cacheMs ?? 30_000;
  const now = options.now ?? Date.now;
  const keyring = runtime.crypto.keyring;
  const underPrevious = cachedCount(cacheMs, now, async () => {
    const previous = keyring.previousKeyId;
    return previous === undefined ? undefined : countUnderKey(previous);
  });
  const { countByKeyId } = options;
  const byKeyId = cachedCount(cacheMs, now, async () => {
    if (countByKeyId === undefined) return undefined;
    const held = new Set([keyring.currentKeyId, ...keyring.sealingKeyIds()]);
    if (keyring.previousKeyId !== undefined) held.add(keyring.previousKeyId);
    const counts: Record<string, number> = Object.fromEntries([...held].map((id) => [id, 0]));
    let plaintext = 0;
    let other = 0;
    for (const [keyId, n] of await countByKeyId()) {
      if (keyId === null) plaintext += n;
      else if (held.has(keyId)) counts[keyId] = (counts[keyId] ?? 0) + n;
      else other += n;
    }
    return { ...counts, plaintext, other };
  });
  return async () => {
    const health = runtime.health();
    const [previousCount, perKey] = await Promise.all([underPrevious(), byKeyId()]);
    return {
      ...health,
      ...(previousCount === undefined ? {} : { records_under_previous_key: previousCount }),
      ...(perKey === undefined ? {} : { records_by_key_id: perKey }),
    };
  };
}

/** A count refreshed at most every `cacheMs`; `undefined` when there is none or the database did not answer. */
function cachedCount<T>(
  cacheMs: number,
  now: () => number,
  load: () => Promise<T | undefined>,
): () => Promise<T | undefined> {
  let cached: { readonly at: number; readonly value: T | undefined } | undefined;
  return async () => {
    if (cached === undefined || now() - cached.at > cacheMs) {
      try {
        cached = { at: now(), value: await load() };
      } catch {
        return undefined;
      }
    }
    return cached.value;
  };
}
