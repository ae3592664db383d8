import type { z } from 'zod';
import {
  bool,
  brokerItem,
  domain,
  hexKey,
  hostItem,
  int,
  ipOrCidrItem,
  list,
  oneOf,
  originItem,
  secretText,
  text,
  url,
} from './fields';

export const ENCRYPTION_PROVIDERS = [
  'local',
  'gcp-kms',
  'aws-kms',
  'azure-keyvault',
  'hashicorp-vault',
] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const BUS_KINDS = ['postgres', 'kafka'] as const;
export const TLS_VERSIONS = ['1.2', '1.3'] as const;
export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

interface SettingSpec<S extends z.ZodType> {
  /** Dotted path in signal.yaml. */
  readonly yaml: string;
  readonly schema: S;
  readonly doc: string;
  readonly secret?: boolean;
}
interface SettingWithDefault<S extends z.ZodType> extends SettingSpec<S> {
  readonly default: z.output<S>;
}

function setting<S extends z.ZodType>(spec: SettingSpec<S>): SettingSpec<S> {
  return spec;
}
function withDefault<S extends z.ZodType>(spec: SettingWithDefault<S>): SettingWithDefault<S> {
  return spec;
}

/**
 * Every setting Signal reads, keyed by its environment variable (the contract of ARCHITECTURE §4 plus the
 * operational ones). Each can also be set in signal.yaml at `yaml`; the environment wins. This table is the
 * single source for the loader, the README's configuration table (checked by a test) and `signal-cli`.
 */
export const SETTINGS = {
  // ── Encryption ────────────────────────────────────────────────────────────────────────────────────
  ENCRYPTION_KEY: setting({
    yaml: 'encryption.key',
    schema: hexKey(),
    secret: true,
    doc: 'AES-256 key, 64 hex characters (`pnpm signal-cli generate-key`); required for the local provider',
  }),
  ENCRYPTION_KEY_PREVIOUS: setting({
    yaml: 'encryption.previous_key',
    schema: hexKey(),
    secret: true,
    doc: 'The previous key during rotation (dual-key mode): decrypts old data, never encrypts',
  }),
  ENCRYPTION_PROVIDER: withDefault({
    yaml: 'encryption.provider',
    schema: oneOf(ENCRYPTION_PROVIDERS),
    default: 'local',
    doc: 'Key provider: local, gcp-kms, aws-kms, azure-keyvault, hashicorp-vault',
  }),
  REQUIRE_ENCRYPTION: withDefault({
    yaml: 'encryption.require_encryption',
    schema: bool(),
    default: false,
    doc: 'true: services refuse to start without a valid key (recommended in production)',
  }),
  ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME: setting({
    yaml: 'encryption.gcp_kms.key_resource_name',
    schema: text(),
    doc: 'gcp-kms: projects/…/locations/…/keyRings/…/cryptoKeys/…',
  }),
  ENCRYPTION_AWS_KMS_KEY_ID: setting({
    yaml: 'encryption.aws_kms.key_id',
    schema: text(),
    doc: 'aws-kms: key id, ARN or alias',
  }),
  ENCRYPTION_AWS_KMS_REGION: setting({
    yaml: 'encryption.aws_kms.region',
    schema: text({
      pattern: /^[a-z]{2}(-[a-z]+)+-\d+$/,
      patternDescription: 'an AWS region such as eu-west-1',
    }),
    doc: "aws-kms: region; default: the region in the key's ARN, else the AWS default chain (AWS_REGION)",
  }),
  ENCRYPTION_AZURE_KEY_ID: setting({
    yaml: 'encryption.azure_keyvault.key_id',
    schema: text(),
    doc: "azure-keyvault: the key's full URL",
  }),
  VAULT_ADDR: setting({
    yaml: 'encryption.hashicorp_vault.address',
    schema: url(['https', 'http']),
    doc: 'hashicorp-vault: Vault/OpenBao address',
  }),
  VAULT_TOKEN: setting({
    yaml: 'encryption.hashicorp_vault.token',
    schema: secretText({ minBytes: 1 }),
    secret: true,
    doc: 'hashicorp-vault: token',
  }),
  VAULT_ROLE_ID: setting({
    yaml: 'encryption.hashicorp_vault.role_id',
    schema: text(),
    doc: 'hashicorp-vault: AppRole role id (with VAULT_SECRET_ID, instead of VAULT_TOKEN)',
  }),
  VAULT_SECRET_ID: setting({
    yaml: 'encryption.hashicorp_vault.secret_id',
    schema: secretText({ minBytes: 1 }),
    secret: true,
    doc: 'hashicorp-vault: AppRole secret id',
  }),
  VAULT_NAMESPACE: setting({
    yaml: 'encryption.hashicorp_vault.namespace',
    schema: text(),
    doc: 'hashicorp-vault: namespace',
  }),
  VAULT_CACERT: setting({
    yaml: 'encryption.hashicorp_vault.ca_cert',
    schema: text(),
    doc: 'hashicorp-vault: CA certificate path',
  }),
  ENCRYPTION_VAULT_MOUNT: withDefault({
    yaml: 'encryption.hashicorp_vault.mount',
    schema: text(),
    default: 'transit',
    doc: 'hashicorp-vault: transit mount',
  }),
  ENCRYPTION_VAULT_KEY: setting({
    yaml: 'encryption.hashicorp_vault.key',
    schema: text(),
    doc: 'hashicorp-vault: transit key name',
  }),

  ENCRYPTION_ENVELOPE: withDefault({
    yaml: 'encryption.envelope',
    schema: bool(),
    default: false,
    doc: 'local provider: true = envelope mode (a DEK per data class in the database, wrapped by a KEK derived from ENCRYPTION_KEY); the KMS providers always use envelope mode',
  }),
  ENCRYPTION_KMS_TIMEOUT_MS: withDefault({
    yaml: 'encryption.kms_timeout_ms',
    schema: int({ min: 50, max: 60_000, unit: 'milliseconds' }),
    default: 2000,
    doc: 'Envelope mode: deadline of each key-provider call',
  }),
  ENCRYPTION_DEK_CACHE_TTL: withDefault({
    yaml: 'encryption.dek_cache.ttl',
    schema: int({ min: 1, max: 86_400, unit: 'seconds' }),
    default: 300,
    doc: 'Envelope mode: seconds a cached DEK is used before it is re-verified with the key provider (bounds how long a revoked KEK or a destroyed DEK keeps working in other processes)',
  }),
  ENCRYPTION_DEK_CACHE_MAX_ENTRIES: withDefault({
    yaml: 'encryption.dek_cache.max_entries',
    schema: int({ min: 1, max: 1_000_000 }),
    default: 1000,
    doc: 'Envelope mode: DEKs kept in memory besides the data-class DEKs (least recently used leave first)',
  }),
  ENCRYPTION_DEK_STALE_GRACE: withDefault({
    yaml: 'encryption.dek_cache.stale_grace',
    schema: int({ min: 0, max: 86_400, unit: 'seconds' }),
    default: 900,
    doc: 'Envelope mode: seconds past the TTL a cached DEK still decrypts while the key provider is unreachable (never encrypts)',
  }),

  ENCRYPTION_CRYPTO_SHREDDING: withDefault({
    yaml: 'encryption.crypto_shredding',
    schema: bool(),
    default: false,
    doc: 'Envelope mode: identity data sealed per subject with a DEK of its own, destroyed by the identity erasure (DELETE /v1/admin/identity/{id})',
  }),

  // ── Infrastructure ────────────────────────────────────────────────────────────────────────────────
  DATABASE_URL: setting({
    yaml: 'database.url',
    schema: url(['postgres', 'postgresql']),
    secret: true,
    doc: 'PostgreSQL URL; unset = embedded PGlite in SIGNAL_DATA_DIR',
  }),
  DB_MAX_CONNS: withDefault({
    yaml: 'database.max_conns',
    schema: int({ min: 1, max: 1000 }),
    default: 10,
    doc: 'PostgreSQL pool size per process',
  }),
  REDIS_URL: setting({
    yaml: 'redis.address',
    schema: url(['redis', 'rediss']),
    secret: true,
    doc: 'Redis URL (redis:// or rediss://); unset = in-process cache',
  }),
  REDIS_TLS_ENABLED: withDefault({
    yaml: 'redis.tls.enabled',
    schema: bool(),
    default: false,
    doc: 'TLS to Redis (implied by rediss://)',
  }),
  REDIS_TLS_CA_CERT_PATH: setting({
    yaml: 'redis.tls.ca_cert_path',
    schema: text(),
    doc: 'CA certificate that signs the Redis server certificate',
  }),
  BUS: withDefault({
    yaml: 'bus.kind',
    schema: oneOf(BUS_KINDS),
    default: 'postgres',
    doc: 'Event bus: postgres (embedded or server) or kafka',
  }),
  BUS_COMPRESS_BATCHES: withDefault({
    yaml: 'bus.compress_batches',
    schema: bool(),
    default: true,
    doc: "postgres bus: compress each visitor's multi-event request inside its sealed segment (never two requests together, ADR 0011); false trades throughput for segment sizes that do not depend on a request's redundancy",
  }),
  KAFKA_BROKERS: setting({
    yaml: 'kafka.brokers',
    schema: list({ item: brokerItem, itemDescription: 'a comma-separated list of host:port' }),
    doc: 'Kafka bootstrap brokers, host:port,host:port',
  }),
  KAFKA_TLS_ENABLED: withDefault({
    yaml: 'kafka.tls.enabled',
    schema: bool(),
    default: false,
    doc: 'TLS to Kafka',
  }),
  KAFKA_TLS_CA_CERT_PATH: setting({
    yaml: 'kafka.tls.ca_cert_path',
    schema: text(),
    doc: 'CA certificate(s) that sign the broker certificates, instead of the public CAs (needs KAFKA_TLS_ENABLED)',
  }),
  KAFKA_SASL_MECHANISM: setting({
    yaml: 'kafka.sasl.mechanism',
    schema: oneOf(KAFKA_SASL_MECHANISMS),
    doc: 'SASL authentication: plain (only with TLS), scram-sha-256 or scram-sha-512; unset = none',
  }),
  KAFKA_SASL_USERNAME: setting({
    yaml: 'kafka.sasl.username',
    schema: text({ maxLength: 1024 }),
    doc: 'SASL user name (with KAFKA_SASL_MECHANISM)',
  }),
  KAFKA_SASL_PASSWORD: setting({
    yaml: 'kafka.sasl.password',
    schema: secretText({ minBytes: 1 }),
    secret: true,
    doc: 'SASL password (with KAFKA_SASL_MECHANISM)',
  }),
  KAFKA_CLIENT_ID: setting({
    yaml: 'kafka.client_id',
    schema: text({
      maxLength: 128,
      pattern: /^[A-Za-z0-9._-]{1,128}$/,
      patternDescription: '1-128 characters of A-Z a-z 0-9 . _ -',
    }),
    doc: 'Client id every service presents to the brokers (logs, quotas); unset = the service name',
  }),
  KAFKA_REPLICATION_FACTOR: withDefault({
    yaml: 'kafka.replication_factor',
    schema: int({ min: 1, max: 32 }),
    default: 3,
    doc: 'Replication factor of the topics Signal creates (1 for a single-broker development cluster)',
  }),
  KAFKA_RAW_EVENTS_PARTITIONS: withDefault({
    yaml: 'kafka.partitions.raw_events',
    schema: int({ min: 1, max: 4096 }),
    default: 12,
    doc: 'Partitions of raw-events when Signal creates it: at least the processor and identity-hub replicas',
  }),
  KAFKA_DELIVERY_PARTITIONS: withDefault({
    yaml: 'kafka.partitions.delivery',
    schema: int({ min: 1, max: 4096 }),
    default: 8,
    doc: 'Partitions of each delivery-<integration> topic when Signal creates it: at least the worker replicas',
  }),
  KAFKA_DLQ_PARTITIONS: withDefault({
    yaml: 'kafka.partitions.dlq',
    schema: int({ min: 1, max: 4096 }),
    default: 3,
    doc: 'Partitions of dlq-events when Signal creates it',
  }),
  SIGNAL_NAMESPACE: withDefault({
    yaml: 'namespace',
    // The same rule as the topic catalog's: the namespace becomes part of Kafka topic and group names.
    schema: text({
      maxLength: 48,
      pattern: /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/,
      patternDescription: '1-48 characters of A-Z a-z 0-9 _ - starting with a letter or digit',
    }),
    default: 'signal',
    doc: 'Prefix for topics and cache keys, so several deployments can share a cluster',
  }),
  SIGNAL_DATA_DIR: withDefault({
    yaml: 'data_dir',
    schema: text(),
    default: './.signal',
    doc: 'Embedded mode: where PGlite keeps its data',
  }),
  EMBEDDED_DEDUP_MARKERS: withDefault({
    yaml: 'embedded.dedup_markers',
    schema: int({ min: 1_000, max: 100_000_000 }),
    default: 200_000,
    doc: 'Embedded cache (no REDIS_URL): events whose ids are kept for deduplication (~400 bytes each); past it the oldest go and the dedup window shortens',
  }),
  EMBEDDED_CONSENT_STATES: withDefault({
    yaml: 'embedded.consent_states',
    schema: int({ min: 1_000, max: 100_000_000 }),
    default: 100_000,
    doc: 'Embedded cache (no REDIS_URL): visitors whose consent state is kept in memory (~400 bytes each); the rest are read back from the database',
  }),
  EMBEDDED_CLAIMS: withDefault({
    yaml: 'embedded.claims',
    schema: int({ min: 1_000, max: 100_000_000 }),
    default: 100_000,
    doc: 'Embedded cache (no REDIS_URL): single-use token ids and HMAC replay markers held at once (~250 bytes each); when full, such requests are refused',
  }),

  // ── Service ──────────────────────────────────────────────────────────────────────────────────────
  LOG_LEVEL: withDefault({
    yaml: 'log_level',
    schema: oneOf(LOG_LEVELS),
    default: 'info',
    doc: 'fatal, error, warn, info, debug, trace or silent',
  }),
  PORT: withDefault({
    yaml: 'port',
    schema: int({ min: 0, max: 65535 }),
    default: 8080,
    doc: 'HTTP(S) port',
  }),
  TLS_CERT_PATH: setting({
    yaml: 'tls.cert_path',
    schema: text(),
    doc: 'PEM certificate chain; with TLS_KEY_PATH the service serves HTTPS (reloaded on change)',
  }),
  TLS_KEY_PATH: setting({ yaml: 'tls.key_path', schema: text(), doc: 'PEM private key' }),
  TLS_MIN_VERSION: withDefault({
    yaml: 'tls.min_version',
    schema: oneOf(TLS_VERSIONS),
    default: '1.2',
    doc: '1.2 (1.3 preferred) or 1.3 only',
  }),
  METRICS_TOKEN: setting({
    yaml: 'metrics_token',
    schema: secretText({ minBytes: 32 }),
    secret: true,
    doc: 'Bearer token that /metrics requires (`Authorization: Bearer …`), at least 32 bytes; unset, /metrics answers anyone who can reach the port',
  }),
  JWT_SECRET: setting({
    yaml: 'management.jwt_secret',
    schema: secretText({ minBytes: 32 }),
    secret: true,
    doc: 'HS256 signing secret for the Management API, at least 32 bytes',
  }),
  SIGNAL_BOOTSTRAP_ADMIN_EMAIL: setting({
    yaml: 'bootstrap.admin_email',
    schema: text({ maxLength: 254 }),
    doc: 'Embedded first start: the admin account to create',
  }),
  SIGNAL_BOOTSTRAP_ADMIN_PASSWORD: setting({
    yaml: 'bootstrap.admin_password',
    schema: secretText({ minBytes: 12 }),
    secret: true,
    doc: 'Embedded first start: its password (else one is generated and printed once)',
  }),

  // ── Gateway ──────────────────────────────────────────────────────────────────────────────────────
  COOKIE_DOMAIN: setting({
    yaml: 'gateway.cookie_domain',
    schema: domain(),
    doc: 'Domain attribute of the _dfid cookie, e.g. .example.com',
  }),
  CORS_ORIGINS: withDefault({
    yaml: 'gateway.cors_origins',
    schema: list({ item: originItem, itemDescription: 'a comma-separated list of origins' }),
    default: [],
    doc: 'Origins allowed in addition to each pipeline’s domain allowlist',
  }),
  TRUSTED_PROXY_HOPS: withDefault({
    yaml: 'gateway.trusted_proxy_hops',
    schema: int({ min: 0, max: 10 }),
    default: 0,
    doc: 'Reverse proxies (load balancer, ingress) in front of the gateway, identity hub and Management API whose X-Forwarded-For entry is trusted for the client IP: context.ip, per-client rate limits, the login throttle and the audit log',
  }),
  TRUSTED_PROXY_CIDRS: withDefault({
    yaml: 'gateway.trusted_proxy_cidrs',
    schema: list({
      item: ipOrCidrItem,
      itemDescription: 'a comma-separated list of IP addresses or CIDR ranges',
    }),
    default: [],
    doc: 'Addresses of those proxies (IPs or CIDR ranges, e.g. the ingress pods’ network): with it, X-Forwarded-For counts only from a peer in the list and only through listed hops, so a client that reaches a pod directly cannot choose its address. Empty: hops are counted, not checked',
  }),
  MAX_BATCH_SIZE: withDefault({
    yaml: 'gateway.max_batch_size',
    schema: int({ min: 1, max: 10_000 }),
    default: 500,
    doc: 'Most events in one /v1/batch request',
  }),
  MAX_PAYLOAD_SIZE: withDefault({
    yaml: 'gateway.max_payload_size',
    schema: int({ min: 1024, max: 64 * 1024 * 1024, unit: 'bytes' }),
    default: 524_288,
    doc: 'Largest request body in bytes (413 above)',
  }),
  MAX_BUFFERED_BODY_BYTES: withDefault({
    yaml: 'gateway.max_buffered_body_bytes',
    schema: int({ min: 1024 * 1024, max: 16 * 1024 * 1024 * 1024, unit: 'bytes' }),
    default: 33_554_432,
    doc: 'Request bodies the gateway holds in memory at once, all connections together (503 above)',
  }),
  RATE_LIMIT_RPS: withDefault({
    yaml: 'gateway.rate_limit_rps',
    schema: int({ min: 1, max: 10_000_000 }),
    default: 1000,
    doc: 'Requests per second per pipeline key (429 above)',
  }),
  PIPELINE_KEY_CACHE_TTL: withDefault({
    yaml: 'gateway.pipeline_key_cache_ttl',
    schema: int({ min: 0, max: 86_400, unit: 'seconds' }),
    default: 300,
    doc: 'Seconds a pipeline key lookup is cached',
  }),

  // ── Identity Hub ─────────────────────────────────────────────────────────────────────────────────
  IDENTITY_TOKEN_TTL: withDefault({
    yaml: 'identity.token_ttl',
    schema: int({ min: 5, max: 120, unit: 'seconds' }),
    default: 120,
    doc: 'Lifetime of a cross-domain identity token in seconds (at most 120)',
  }),
  IDENTITY_CLOCK_SKEW: withDefault({
    yaml: 'identity.clock_skew',
    schema: int({ min: 0, max: 30, unit: 'seconds' }),
    default: 5,
    doc: 'Clock difference tolerated between Identity Hub instances, in seconds',
  }),
  IDENTITY_PUBLIC_HOSTS: withDefault({
    yaml: 'identity.public_hosts',
    schema: list({
      item: hostItem,
      itemDescription: 'a comma-separated list of host names such as data.shop.example',
    }),
    default: [],
    doc: 'When set, the only Host values the Identity Hub answers for (set it behind a proxy)',
  }),
  IDENTITY_COOKIE_DOMAINS: withDefault({
    yaml: 'identity.cookie_domains',
    schema: list({
      item: hostItem,
      itemDescription: 'a comma-separated list of host names such as data.shop.example',
    }),
    default: [],
    doc: 'Further Domain attributes `_dfid` may carry, one per linked site (COOKIE_DOMAIN is always included)',
  }),
  IDENTITY_RATE_LIMIT_RPS: withDefault({
    yaml: 'identity.rate_limit_rps',
    schema: int({ min: 1, max: 10_000_000 }),
    default: 100,
    doc: 'Requests per second per pipeline on each of the token, redirect and resolve endpoints (429 above)',
  }),
  IDENTITY_RATE_LIMIT_PER_IP_RPS: withDefault({
    yaml: 'identity.rate_limit_per_ip_rps',
    schema: int({ min: 1, max: 10_000_000 }),
    default: 20,
    doc: 'Requests per second per client address (IPv6: per /64) on each of those endpoints (429 above)',
  }),

  // ── Delivery ─────────────────────────────────────────────────────────────────────────────────────
  RETRY_MAX_ATTEMPTS: withDefault({
    yaml: 'delivery.retry_max_attempts',
    schema: int({ min: 1, max: 50 }),
    default: 5,
    doc: 'Delivery attempts before the DLQ',
  }),
  DELIVERY_ALLOWED_PRIVATE_CIDRS: withDefault({
    yaml: 'delivery.allowed_private_cidrs',
    schema: list({
      item: ipOrCidrItem,
      itemDescription: 'a comma-separated list of IP addresses or CIDR ranges',
    }),
    default: [],
    doc: 'Private or reserved addresses (IPs or CIDR ranges) that deliveries may reach. Every other such address (RFC 1918, loopback, link-local with the cloud metadata service, unique local, …) is refused, whether an integration names it or a host name resolves to it, so that no one who may edit an integration can make the worker call the deployment’s own network. List an internal webhook receiver’s range here',
  }),
  RETRY_BACKOFF_BASE: withDefault({
    yaml: 'delivery.retry_backoff_base',
    schema: int({ min: 1, max: 86_400, unit: 'seconds' }),
    default: 60,
    doc: 'Seconds before the first retry; later ones grow exponentially (with jitter)',
  }),
  RATE_LIMIT_PER_SECOND: withDefault({
    yaml: 'delivery.rate_limit_per_second',
    schema: int({ min: 1, max: 1_000_000 }),
    default: 100,
    doc: 'Deliveries per second per integration',
  }),

  // ── Management API ───────────────────────────────────────────────────────────────────────────────
  ACCESS_TOKEN_TTL: withDefault({
    yaml: 'management.access_token_ttl',
    schema: int({ min: 60, max: 86_400, unit: 'seconds' }),
    default: 900,
    doc: 'Access token lifetime in seconds',
  }),
  REFRESH_TOKEN_TTL: withDefault({
    yaml: 'management.refresh_token_ttl',
    schema: int({ min: 300, max: 90 * 86_400, unit: 'seconds' }),
    default: 604_800,
    doc: 'Refresh token lifetime in seconds (idle: each refresh issues a new one)',
  }),
  SIGNAL_OPERATOR_ORG: withDefault({
    yaml: 'management.operator_org',
    schema: text({
      maxLength: 64,
      pattern: /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/,
      patternDescription: 'an org slug (lowercase letters, digits and inner hyphens, 1–64 characters)',
    }),
    default: 'demo',
    doc: "Slug of the org whose admins and owner act for the whole deployment (re-encryption job, org-less audit entries); the all-in-one's first start creates `demo`",
  }),
  SESSION_MAX_AGE: withDefault({
    yaml: 'management.session_max_age',
    schema: int({ min: 300, max: 90 * 86_400, unit: 'seconds' }),
    default: 2_592_000,
    doc: 'Absolute lifetime of a login in seconds: no refresh extends it; sign in again after',
  }),
} as const;

export type SettingName = keyof typeof SETTINGS;

type Setting = (typeof SETTINGS)[SettingName];
type Output<K extends SettingName> = z.output<(typeof SETTINGS)[K]['schema']>;

/** The parsed value of each setting: always present when it has a default, else possibly undefined. */
export type SettingValues = {
  [K in SettingName]: (typeof SETTINGS)[K] extends { default: unknown } ? Output<K> : Output<K> | undefined;
};

export function settingSpec(name: SettingName): Setting {
  return SETTINGS[name];
}
