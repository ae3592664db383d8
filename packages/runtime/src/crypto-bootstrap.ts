import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type SignalConfig } from '@signal/config';
import {
  type CryptoAuditSink,
  type CryptoHealth,
  type CryptoService,
  createCryptoService,
  createKeyring,
  cryptoHealth,
} from '@signal/crypto';
import type { Metrics } from '@signal/telemetry';

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
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32).toString('hex');
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
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
  const operations = options.metrics?.counter(
    'signal_crypto_operations_total',
    'Encryption and decryption operations',
    ['op', 'key_id', 'result'],
  );
  const crypto = createCryptoService({
    keyring,
    ...(options.audit ? { audit: options.audit } : {}),
    ...(operations
      ? { onOperation: (op, keyId, result) => operations.inc({ op, key_id: keyId, result }) }
      : {}),
  });
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

/** `/health/crypto` during a rotation: the contract body plus how many records still need re-encryption. */
export type RotationAwareCryptoHealth = CryptoHealth & { readonly records_under_previous_key?: number };

/**
 * The `/health/crypto` body with, in dual-key mode, `records_under_previous_key`: the number of stored
 * records still encrypted under ENCRYPTION_KEY_PREVIOUS, so an operator knows when the old key can go (0).
 * The count is cached (probes run every few seconds) and left out when the database cannot answer, so a
 * database outage does not make the crypto check lie either way.
 */
export function rotationAwareCryptoHealth(
  runtime: Pick<CryptoRuntime, 'crypto' | 'health'>,
  countUnderKey: (keyId: string) => Promise<number>,
  options: { readonly cacheMs?: number; readonly now?: () => number } = {},
): () => Promise<RotationAwareCryptoHealth> {
  const cacheMs = options.cacheMs ?? 30_000;
  const now = options.now ?? Date.now;
  let cached: { readonly at: number; readonly count: number } | undefined;
  return async () => {
    const health = runtime.health();
    const previous = runtime.crypto.keyring.previousKeyId;
    if (previous === undefined) return health;
    if (cached === undefined || now() - cached.at > cacheMs) {
      try {
        cached = { at: now(), count: await countUnderKey(previous) };
      } catch {
        return health;
      }
    }
    return { ...health, records_under_previous_key: cached.count };
  };
}
