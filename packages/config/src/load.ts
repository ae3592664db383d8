import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { deepFreeze } from './freeze';
import type { Secret } from './secret';
import {
  type BUS_KINDS,
  type ENCRYPTION_PROVIDERS,
  type KAFKA_SASL_MECHANISMS,
  type LOG_LEVELS,
  SETTINGS,
  type SettingName,
  type SettingValues,
  type TLS_VERSIONS,
} from './settings';

export type EncryptionProvider = (typeof ENCRYPTION_PROVIDERS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type BusKind = (typeof BUS_KINDS)[number];
export type TlsVersion = (typeof TLS_VERSIONS)[number];
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** The whole, validated, deep-frozen configuration. Absent optional values are `null`, never `undefined`. */
export interface SignalConfig {
  readonly configFile: string | null;
  readonly namespace: string;
  readonly dataDir: string;
  /** Entry budgets of the in-process cache (no REDIS_URL); see `EMBEDDED_CACHE_LIMITS` in @signal/runtime. */
  readonly embeddedCache: {
    readonly dedupMarkers: number;
    readonly consentStates: number;
    readonly claims: number;
  };
  readonly logLevel: LogLevel;
  readonly port: number;
  /** What `/metrics` requires as a bearer token; null: it is open to whoever reaches the port. */
  readonly metricsToken: Secret | null;
  readonly tls: {
    readonly certPath: string;
    readonly keyPath: string;
    readonly minVersion: TlsVersion;
  } | null;
  readonly encryption: {
    readonly provider: EncryptionProvider;
    readonly requireEncryption: boolean;
    /** 64 lowercase hex characters. */
    readonly key: Secret | null;
    readonly previousKey: Secret | null;
    readonly gcpKms: { readonly keyResourceName: string | null };
    readonly awsKms: { readonly keyId: string | null; readonly region: string | null };
    readonly azureKeyVault: { readonly keyId: string | null };
    readonly vault: {
      readonly address: Secret | null;
      readonly token: Secret | null;
      /** AppRole login (instead of a token): both set or neither. */
      readonly roleId: string | null;
      readonly secretId: Secret | null;
      readonly namespace: string | null;
      readonly caCertPath: string | null;
      readonly mount: string;
      readonly key: string | null;
    };
    /** Envelope mode (DEKs wrapped by the provider's KEK): always for KMS providers, opt-in for `local`. */
    readonly envelope: boolean;
    /** Per-subject identity DEKs, destroyed by the identity erasure (envelope mode only). */
    readonly cryptoShredding: boolean;
    readonly kmsTimeoutMs: number;
    readonly dekCache: {
      readonly ttlSeconds: number;
      readonly maxEntries: number;
      readonly staleGraceSeconds: number;
    };
  };
  readonly database: { readonly url: Secret | null; readonly maxConnections: number };
  readonly redis: {
    readonly url: Secret | null;
    readonly tls: { readonly enabled: boolean; readonly caCertPath: string | null };
  };
  readonly bus: {
    readonly kind: BusKind;
    /** postgres bus: compress one request's same-visitor runs (ADR 0011). */
    readonly compressBatches: boolean;
    readonly kafka: {
      readonly brokers: readonly string[];
      /** null: each service presents its own name. */
      readonly clientId: string | null;
      readonly tls: { readonly enabled: boolean; readonly caCertPath: string | null };
      readonly sasl: {
        readonly mechanism: KafkaSaslMechanism;
        readonly username: string;
        readonly password: Secret;
      } | null;
      /** For the topics Signal creates; an existing topic keeps its own. */
      readonly replicationFactor: number;
      readonly partitions: { readonly rawEvents: number; readonly delivery: number; readonly dlq: number };
    };
  };
  readonly gateway: {
    readonly cookieDomain: string | null;
    readonly corsOrigins: readonly string[];
    readonly trustedProxyHops: number;
    /** IPs and CIDR ranges of those proxies; empty: hops are counted, not checked. */
    readonly trustedProxyCidrs: readonly string[];
    readonly maxBatchSize: number;
    readonly maxPayloadSize: number;
    /** At least `maxPayloadSize` (checked at load). */
    readonly maxBufferedBodyBytes: number;
    readonly rateLimitRps: number;
    readonly pipelineKeyCacheTtlSeconds: number;
  };
  readonly identity: {
    readonly tokenTtlSeconds: number;
    readonly clockSkewSeconds: number;
    readonly publicHosts: readonly string[];
    readonly cookieDomains: readonly string[];
    readonly rateLimitRps: number;
    readonly ipRateLimitRps: number;
  };
  readonly delivery: {
    readonly retryMaxAttempts: number;
    /** DELIVERY_ALLOWED_PRIVATE_CIDRS: private or reserved addresses deliveries may reach (none by default). */
    readonly allowedPrivateCidrs: readonly string[];
    readonly retryBackoffBaseSeconds: number;
    readonly rateLimitPerSecond: number;
  };
  readonly management: {
    readonly jwtSecret: Secret | null;
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    /** `SESSION_MAX_AGE`: a login's refresh tokens never outlive its start + this. */
    readonly sessionMaxAgeSeconds: number;
    /** `SIGNAL_OPERATOR_ORG`: slug of the org whose admins and owner hold the deployment authority. */
    readonly operatorOrg: string;
  };
  readonly bootstrap: { readonly adminEmail: string | null; readonly adminPassword: Secret | null };
}

/** A configuration that cannot be used. `problems` each name the variable and what it must be. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(
      problems.length === 1
        ? (problems[0] ?? 'invalid configuration')
        : `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** Defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory where `signal.yaml` is looked for when SIGNAL_CONFIG is unset; defaults to `process.cwd()`. */
  readonly cwd?: string;
}

type YamlTree = Record<string, unknown>;

function readYaml(env: LoadConfigOptions['env'], cwd: string): { file: string | null; tree: YamlTree } {
  const explicit = env?.SIGNAL_CONFIG?.trim();
  const file = explicit ? resolve(cwd, explicit) : resolve(cwd, 'signal.yaml');
  if (!existsSync(file)) {
    if (explicit)
      throw new ConfigError([`SIGNAL_CONFIG must name an existing file (${file} does not exist)`]);
    return { file: null, tree: {} };
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n')[0] : 'parse error';
    throw new ConfigError([`${file} must be valid YAML (${detail})`]);
  }
  if (parsed === null || parsed === undefined) return { file, tree: {} };
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([`${file} must hold a mapping of settings at the top level`]);
  }
  return { file, tree: parsed as YamlTree };
}

function yamlLeaves(tree: YamlTree, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out.push(...yamlLeaves(value as YamlTree, path));
    } else {
      out.push(path);
    }
  }
  return out;
}

function yamlGet(tree: YamlTree, path: string): unknown {
  let node: unknown = tree;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = Object.hasOwn(node, part) ? (node as YamlTree)[part] : undefined;
  }
  return node;
}

const YAML_PATHS = new Set(Object.values(SETTINGS).map((s) => s.yaml));

function parseSettings(
  env: Readonly<Record<string, string | undefined>>,
  tree: YamlTree,
  file: string | null,
  problems: string[],
): SettingValues {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const fromEnv = env[name];
    const fromYaml = yamlGet(tree, spec.yaml);
    const useEnv = fromEnv !== undefined && fromEnv !== '';
    const raw = useEnv ? fromEnv : fromYaml;
    if (raw === undefined || raw === null) {
      values[name] = 'default' in spec ? spec.default : undefined;
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) {
      values[name] = result.data;
    } else {
      const label = useEnv ? name : `${spec.yaml} in ${file ?? 'signal.yaml'} (${name})`;
      for (const issue of result.error.issues) problems.push(`${label} must be ${issue.message}`);
    }
  }
  return values as SettingValues;
}

function crossChecks(v: SettingValues, problems: string[]): void {
  const key = v.ENCRYPTION_KEY?.reveal();
  const previous = v.ENCRYPTION_KEY_PREVIOUS?.reveal();
  if (previous !== undefined && key === undefined) {
    problems.push(
      'ENCRYPTION_KEY_PREVIOUS is set but ENCRYPTION_KEY is not: set ENCRYPTION_KEY to the new key',
    );
  }
  if (previous !== undefined && key !== undefined && previous === key) {
    problems.push(
      'ENCRYPTION_KEY_PREVIOUS must differ from ENCRYPTION_KEY (set it to the old key, not the new one)',
    );
  }
  if (v.REQUIRE_ENCRYPTION && v.ENCRYPTION_PROVIDER === 'local' && key === undefined) {
    problems.push(
      'REQUIRE_ENCRYPTION is true but ENCRYPTION_KEY is not set: set ENCRYPTION_KEY to 64 hexadecimal characters (generate one with `pnpm signal-cli generate-key`)',
    );
  }
  if (v.ENCRYPTION_ENVELOPE && v.ENCRYPTION_PROVIDER === 'local' && key === undefined) {
    problems.push(
      'ENCRYPTION_ENVELOPE is true but ENCRYPTION_KEY is not set: the local provider derives its KEK from ENCRYPTION_KEY',
    );
  }
  if (v.ENCRYPTION_CRYPTO_SHREDDING && v.ENCRYPTION_PROVIDER === 'local' && !v.ENCRYPTION_ENVELOPE) {
    problems.push(
      'ENCRYPTION_CRYPTO_SHREDDING needs envelope mode: set ENCRYPTION_ENVELOPE=true (or a KMS ENCRYPTION_PROVIDER)',
    );
  }
  const needs: Partial<Record<(typeof v)['ENCRYPTION_PROVIDER'], [SettingName, unknown][]>> = {
    'gcp-kms': [['ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME', v.ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME]],
    'aws-kms': [['ENCRYPTION_AWS_KMS_KEY_ID', v.ENCRYPTION_AWS_KMS_KEY_ID]],
    'azure-keyvault': [['ENCRYPTION_AZURE_KEY_ID', v.ENCRYPTION_AZURE_KEY_ID]],
    'hashicorp-vault': [
      ['VAULT_ADDR', v.VAULT_ADDR],
      ['ENCRYPTION_VAULT_KEY', v.ENCRYPTION_VAULT_KEY],
    ],
  };
  for (const [name, value] of needs[v.ENCRYPTION_PROVIDER] ?? []) {
    if (value === undefined)
      problems.push(`${name} must be set when ENCRYPTION_PROVIDER is ${v.ENCRYPTION_PROVIDER}`);
  }
  if (v.ENCRYPTION_PROVIDER === 'hashicorp-vault') vaultChecks(v, problems);
  if ((v.TLS_CERT_PATH === undefined) !== (v.TLS_KEY_PATH === undefined)) {
    problems.push(
      'TLS_CERT_PATH and TLS_KEY_PATH must be set together (or neither, behind a TLS-terminating proxy)',
    );
  }
  if (v.TRUSTED_PROXY_CIDRS.length > 0 && v.TRUSTED_PROXY_HOPS === 0) {
    problems.push(
      'TRUSTED_PROXY_HOPS must be at least 1 when TRUSTED_PROXY_CIDRS is set (with 0 hops X-Forwarded-For is ignored and the list would do nothing)',
    );
  }
  if (v.MAX_BUFFERED_BODY_BYTES < v.MAX_PAYLOAD_SIZE) {
    problems.push(
      `MAX_BUFFERED_BODY_BYTES (${v.MAX_BUFFERED_BODY_BYTES}) must be at least MAX_PAYLOAD_SIZE (${v.MAX_PAYLOAD_SIZE}): otherwise a body of the allowed size could never be read`,
    );
  }
  if (v.BUS === 'kafka' && (v.KAFKA_BROKERS === undefined || v.KAFKA_BROKERS.length === 0)) {
    problems.push('KAFKA_BROKERS must list at least one host:port when BUS is kafka');
  }
  kafkaChecks(v, problems);
}

/** Kafka security settings come in groups: half a group would silently connect without it. */
function kafkaChecks(v: SettingValues, problems: string[]): void {
  if (v.KAFKA_TLS_CA_CERT_PATH !== undefined && !v.KAFKA_TLS_ENABLED) {
    problems.push(
      'KAFKA_TLS_CA_CERT_PATH is set but KAFKA_TLS_ENABLED is not true: set KAFKA_TLS_ENABLED=true (a CA is only used over TLS)',
    );
  }
  const credentials: [SettingName, unknown][] = [
    ['KAFKA_SASL_USERNAME', v.KAFKA_SASL_USERNAME],
    ['KAFKA_SASL_PASSWORD', v.KAFKA_SASL_PASSWORD],
  ];
  if (v.KAFKA_SASL_MECHANISM === undefined) {
    const given = credentials.filter(([, value]) => value !== undefined).map(([name]) => name);
    if (given.length > 0) {
      problems.push(
        `KAFKA_SASL_MECHANISM must be set (plain, scram-sha-256 or scram-sha-512) when ${given.join(' or ')} is set`,
      );
    }
    return;
  }
  const missing = credentials.filter(([, value]) => value === undefined).map(([name]) => name);
  if (missing.length > 0) {
    problems.push(
      `${missing.join(' and ')} must be set when KAFKA_SASL_MECHANISM is ${v.KAFKA_SASL_MECHANISM} (KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD go together)`,
    );
  }
  if (v.KAFKA_SASL_MECHANISM === 'plain' && !v.KAFKA_TLS_ENABLED) {
    problems.push(
      'KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_TLS_ENABLED=true, or use scram-sha-256 or scram-sha-512',
    );
  }
}

function kafkaSasl(v: SettingValues): SignalConfig['bus']['kafka']['sasl'] {
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username } = v;
  const password = v.KAFKA_SASL_PASSWORD;
  if (mechanism === undefined || username === undefined || password === undefined) return null;
  return { mechanism, username, password };
}

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Vault/OpenBao: exactly one way to log in, and the token never crosses a network in plaintext. */
function vaultChecks(v: SettingValues, problems: string[]): void {
  const hasToken = v.VAULT_TOKEN !== undefined;
  const hasRole = v.VAULT_ROLE_ID !== undefined;
  const hasSecret = v.VAULT_SECRET_ID !== undefined;
  const address = v.VAULT_ADDR === undefined ? undefined : new URL(v.VAULT_ADDR.reveal());
  // A Vault Agent on loopback (the Helm chart's sidecar option) adds its auto-auth token itself.
  const loopback = address !== undefined && LOOPBACK_HOSTS.has(address.hostname);
  if (hasRole !== hasSecret) {
    problems.push('VAULT_ROLE_ID and VAULT_SECRET_ID must be set together (AppRole login)');
  } else if (hasToken && hasRole) {
    problems.push(
      'VAULT_TOKEN and VAULT_ROLE_ID/VAULT_SECRET_ID must not both be set: choose a token or an AppRole login',
    );
  } else if (!hasToken && !hasRole && address !== undefined && !loopback) {
    problems.push(
      'VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID for an AppRole login) must be set when ENCRYPTION_PROVIDER is hashicorp-vault, unless VAULT_ADDR is a local Vault Agent that adds its own token',
    );
  }
  if (address?.protocol === 'http:' && !loopback) {
    problems.push(
      'VAULT_ADDR must start with https:// (plain http:// is accepted only for a loopback address such as a local Vault Agent)',
    );
  }
}

function assemble(v: SettingValues, file: string | null): SignalConfig {
  const redisUrl = v.REDIS_URL ?? null;
  return {
    configFile: file,
    namespace: v.SIGNAL_NAMESPACE,
    dataDir: v.SIGNAL_DATA_DIR,
    embeddedCache: {
      dedupMarkers: v.EMBEDDED_DEDUP_MARKERS,
      consentStates: v.EMBEDDED_CONSENT_STATES,
      claims: v.EMBEDDED_CLAIMS,
    },
    logLevel: v.LOG_LEVEL,
    port: v.PORT,
    metricsToken: v.METRICS_TOKEN ?? null,
    tls:
      v.TLS_CERT_PATH !== undefined && v.TLS_KEY_PATH !== undefined
        ? { certPath: v.TLS_CERT_PATH, keyPath: v.TLS_KEY_PATH, minVersion: v.TLS_MIN_VERSION }
        : null,
    encryption: {
      provider: v.ENCRYPTION_PROVIDER,
      requireEncryption: v.REQUIRE_ENCRYPTION,
      key: v.ENCRYPTION_KEY ?? null,
      previousKey: v.ENCRYPTION_KEY_PREVIOUS ?? null,
      gcpKms: { keyResourceName: v.ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME ?? null },
      awsKms: { keyId: v.ENCRYPTION_AWS_KMS_KEY_ID ?? null, region: v.ENCRYPTION_AWS_KMS_REGION ?? null },
      azureKeyVault: { keyId: v.ENCRYPTION_AZURE_KEY_ID ?? null },
      vault: {
        address: v.VAULT_ADDR ?? null,
        token: v.VAULT_TOKEN ?? null,
        roleId: v.VAULT_ROLE_ID ?? null,
        secretId: v.VAULT_SECRET_ID ?? null,
        namespace: v.VAULT_NAMESPACE ?? null,
        caCertPath: v.VAULT_CACERT ?? null,
        mount: v.ENCRYPTION_VAULT_MOUNT,
        key: v.ENCRYPTION_VAULT_KEY ?? null,
      },
      envelope: v.ENCRYPTION_PROVIDER !== 'local' || v.ENCRYPTION_ENVELOPE,
      cryptoShredding: v.ENCRYPTION_CRYPTO_SHREDDING,
      kmsTimeoutMs: v.ENCRYPTION_KMS_TIMEOUT_MS,
      dekCache: {
        ttlSeconds: v.ENCRYPTION_DEK_CACHE_TTL,
        maxEntries: v.ENCRYPTION_DEK_CACHE_MAX_ENTRIES,
        staleGraceSeconds: v.ENCRYPTION_DEK_STALE_GRACE,
      },
    },
    database: { url: v.DATABASE_URL ?? null, maxConnections: v.DB_MAX_CONNS },
    redis: {
      url: redisUrl,
      tls: {
        enabled: v.REDIS_TLS_ENABLED || (redisUrl?.reveal().startsWith('rediss:') ?? false),
        caCertPath: v.REDIS_TLS_CA_CERT_PATH ?? null,
      },
    },
    bus: {
      kind: v.BUS,
      compressBatches: v.BUS_COMPRESS_BATCHES,
      kafka: {
        brokers: v.KAFKA_BROKERS ?? [],
        clientId: v.KAFKA_CLIENT_ID ?? null,
        tls: { enabled: v.KAFKA_TLS_ENABLED, caCertPath: v.KAFKA_TLS_CA_CERT_PATH ?? null },
        sasl: kafkaSasl(v),
        replicationFactor: v.KAFKA_REPLICATION_FACTOR,
        partitions: {
          rawEvents: v.KAFKA_RAW_EVENTS_PARTITIONS,
          delivery: v.KAFKA_DELIVERY_PARTITIONS,
          dlq: v.KAFKA_DLQ_PARTITIONS,
        },
      },
    },
    gateway: {
      cookieDomain: v.COOKIE_DOMAIN ?? null,
      corsOrigins: v.CORS_ORIGINS,
      trustedProxyHops: v.TRUSTED_PROXY_HOPS,
      trustedProxyCidrs: v.TRUSTED_PROXY_CIDRS,
      maxBatchSize: v.MAX_BATCH_SIZE,
      maxPayloadSize: v.MAX_PAYLOAD_SIZE,
      maxBufferedBodyBytes: v.MAX_BUFFERED_BODY_BYTES,
      rateLimitRps: v.RATE_LIMIT_RPS,
      pipelineKeyCacheTtlSeconds: v.PIPELINE_KEY_CACHE_TTL,
    },
    identity: {
      tokenTtlSeconds: v.IDENTITY_TOKEN_TTL,
      clockSkewSeconds: v.IDENTITY_CLOCK_SKEW,
      publicHosts: v.IDENTITY_PUBLIC_HOSTS.map((h) => h.toLowerCase()),
      cookieDomains: v.IDENTITY_COOKIE_DOMAINS.map((h) => h.toLowerCase()),
      rateLimitRps: v.IDENTITY_RATE_LIMIT_RPS,
      ipRateLimitRps: v.IDENTITY_RATE_LIMIT_PER_IP_RPS,
    },
    delivery: {
      retryMaxAttempts: v.RETRY_MAX_ATTEMPTS,
      allowedPrivateCidrs: v.DELIVERY_ALLOWED_PRIVATE_CIDRS,
      retryBackoffBaseSeconds: v.RETRY_BACKOFF_BASE,
      rateLimitPerSecond: v.RATE_LIMIT_PER_SECOND,
    },
    management: {
      jwtSecret: v.JWT_SECRET ?? null,
      accessTokenTtlSeconds: v.ACCESS_TOKEN_TTL,
      refreshTokenTtlSeconds: v.REFRESH_TOKEN_TTL,
      sessionMaxAgeSeconds: v.SESSION_MAX_AGE,
      operatorOrg: v.SIGNAL_OPERATOR_ORG,
    },
    bootstrap: {
      adminEmail: v.SIGNAL_BOOTSTRAP_ADMIN_EMAIL ?? null,
      adminPassword: v.SIGNAL_BOOTSTRAP_ADMIN_PASSWORD ?? null,
    },
  };
}

/**
 * Loads the configuration once, at start-up: environment variables over `signal.yaml` (from SIGNAL_CONFIG,
 * else `./signal.yaml` when present) over defaults. Every problem is collected and thrown together as a
 * ConfigError, so an operator fixes them in one go. The result is deep-frozen; secrets print as
 * `[redacted]`. Only this module reads `process.env`.
 */
export function loadConfig(options: LoadConfigOptions = {}): SignalConfig {
  const env = options.env ?? process.env;
  const { file, tree } = readYaml(env, options.cwd ?? process.cwd());
  const problems: string[] = [];
  for (const path of yamlLeaves(tree)) {
    if (!YAML_PATHS.has(path)) problems.push(`${path} in ${file ?? 'signal.yaml'} is not a known setting`);
  }
  const values = parseSettings(env, tree, file, problems);
  if (problems.length === 0) crossChecks(values, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(assemble(values, file));
}
