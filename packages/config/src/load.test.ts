import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load';

const KEY_A = 'a'.repeat(64);
const KEY_B = '0123456789abcdef'.repeat(4);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'signal-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function load(env: Record<string, string> = {}) {
  return loadConfig({ env, cwd: dir });
}

function problemsOf(env: Record<string, string>, yaml?: string): readonly string[] {
  if (yaml !== undefined) writeFileSync(join(dir, 'signal.yaml'), yaml);
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('runs on embedded defaults with no environment at all', () => {
    const config = load();
    expect(config.encryption.provider).toBe('local');
    expect(config.encryption.requireEncryption).toBe(false);
    expect(config.encryption.key).toBeNull();
    expect(config.database.url).toBeNull();
    expect(config.redis.url).toBeNull();
    expect(config.bus.kind).toBe('postgres');
    expect(config.port).toBe(8080);
    expect(config.gateway).toEqual({
      cookieDomain: null,
      corsOrigins: [],
      trustedProxyHops: 0,
      trustedProxyCidrs: [],
      maxBatchSize: 500,
      maxPayloadSize: 524288,
      maxBufferedBodyBytes: 33554432,
      rateLimitRps: 1000,
      pipelineKeyCacheTtlSeconds: 300,
    });
    expect(config.delivery).toEqual({
      retryMaxAttempts: 5,
      allowedPrivateCidrs: [],
      retryBackoffBaseSeconds: 60,
      rateLimitPerSecond: 100,
    });
    expect(config.management.accessTokenTtlSeconds).toBe(900);
    expect(config.management.refreshTokenTtlSeconds).toBe(604800);
    expect(config.dataDir).toBe('./.signal');
  });

  it('is deep-frozen', () => {
    const config = load({ ENCRYPTION_KEY: KEY_A });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.gateway.corsOrigins)).toBe(true);
    expect(() => {
      (config.gateway as { maxBatchSize: number }).maxBatchSize = 1;
    }).toThrow(TypeError);
  });
});

describe('encryption keys', () => {
  it('accepts a 64-hex key and normalises it to lowercase', () => {
    const config = load({ ENCRYPTION_KEY: KEY_B.toUpperCase() });
    expect(config.encryption.key?.reveal()).toBe(KEY_B);
  });

  it.each([
    ['63 characters', 'a'.repeat(63), 'ENCRYPTION_KEY must be exactly 64 hexadecimal characters (got 63)'],
    ['65 characters', 'a'.repeat(65), 'ENCRYPTION_KEY must be exactly 64 hexadecimal characters (got 65)'],
    [
      'non-hex characters',
      `${'a'.repeat(63)}g`,
      'ENCRYPTION_KEY must be exactly 64 hexadecimal characters (got 64 characters, not all hexadecimal)',
    ],
  ])('refuses a key of %s and names the variable', (_, key, message) => {
    expect(problemsOf({ ENCRYPTION_KEY: key })).toEqual([message]);
  });

  it('never echoes the rejected key in the error', () => {
    const bad = `${KEY_B.slice(0, 62)}zz`;
    const problems = problemsOf({ ENCRYPTION_KEY: bad });
    expect(problems.join('\n')).not.toContain(bad.slice(0, 16));
  });

  it('refuses a previous key equal to the current one', () => {
    expect(problemsOf({ ENCRYPTION_KEY: KEY_A, ENCRYPTION_KEY_PREVIOUS: KEY_A })).toEqual([
      'ENCRYPTION_KEY_PREVIOUS must differ from ENCRYPTION_KEY (set it to the old key, not the new one)',
    ]);
  });

  it('refuses a previous key without a current key', () => {
    expect(problemsOf({ ENCRYPTION_KEY_PREVIOUS: KEY_A })[0]).toMatch(
      /ENCRYPTION_KEY_PREVIOUS is set but ENCRYPTION_KEY/,
    );
  });

  it('validates ENCRYPTION_KEY_PREVIOUS like the key', () => {
    expect(problemsOf({ ENCRYPTION_KEY: KEY_A, ENCRYPTION_KEY_PREVIOUS: 'abc' })).toEqual([
      'ENCRYPTION_KEY_PREVIOUS must be exactly 64 hexadecimal characters (got 3)',
    ]);
  });

  it('accepts dual-key mode', () => {
    const config = load({ ENCRYPTION_KEY: KEY_A, ENCRYPTION_KEY_PREVIOUS: KEY_B });
    expect(config.encryption.previousKey?.reveal()).toBe(KEY_B);
  });

  it('refuses an unknown provider and lists the valid ones', () => {
    expect(problemsOf({ ENCRYPTION_PROVIDER: 'gpc-kms' })).toEqual([
      'ENCRYPTION_PROVIDER must be one of local, gcp-kms, aws-kms, azure-keyvault, hashicorp-vault',
    ]);
  });

  it('REQUIRE_ENCRYPTION=true without a key refuses and says which variable to set', () => {
    const [problem] = problemsOf({ REQUIRE_ENCRYPTION: 'true' });
    expect(problem).toMatch(/^REQUIRE_ENCRYPTION is true but ENCRYPTION_KEY is not set: set ENCRYPTION_KEY/);
  });

  it('REQUIRE_ENCRYPTION=true with a valid key loads', () => {
    expect(load({ REQUIRE_ENCRYPTION: 'true', ENCRYPTION_KEY: KEY_A }).encryption.requireEncryption).toBe(
      true,
    );
  });

  it('REQUIRE_ENCRYPTION must be a boolean', () => {
    expect(problemsOf({ REQUIRE_ENCRYPTION: 'yep' })).toEqual(['REQUIRE_ENCRYPTION must be true or false']);
  });

  it('a KMS provider needs its key reference', () => {
    expect(problemsOf({ ENCRYPTION_PROVIDER: 'gcp-kms' })).toEqual([
      'ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME must be set when ENCRYPTION_PROVIDER is gcp-kms',
    ]);
  });

  const VAULT = {
    ENCRYPTION_PROVIDER: 'hashicorp-vault',
    VAULT_ADDR: 'https://vault.internal:8200',
    ENCRYPTION_VAULT_KEY: 'signal',
  };

  it('hashicorp-vault loads with a token or with an AppRole login', () => {
    expect(load({ ...VAULT, VAULT_TOKEN: 'hvs.x' }).encryption.vault.token?.reveal()).toBe('hvs.x');
    const approle = load({ ...VAULT, VAULT_ROLE_ID: 'role', VAULT_SECRET_ID: 'secret' }).encryption.vault;
    expect([approle.roleId, approle.secretId?.reveal(), approle.token]).toEqual(['role', 'secret', null]);
  });

  it('hashicorp-vault needs exactly one way to log in', () => {
    expect(problemsOf(VAULT)).toEqual([
      'VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID for an AppRole login) must be set when ENCRYPTION_PROVIDER is hashicorp-vault, unless VAULT_ADDR is a local Vault Agent that adds its own token',
    ]);
    const agent = load({ ...VAULT, VAULT_ADDR: 'http://127.0.0.1:8100' }).encryption.vault;
    expect([agent.token, agent.roleId]).toEqual([null, null]);
    expect(problemsOf({ ...VAULT, VAULT_ROLE_ID: 'role' })).toEqual([
      'VAULT_ROLE_ID and VAULT_SECRET_ID must be set together (AppRole login)',
    ]);
    expect(
      problemsOf({ ...VAULT, VAULT_TOKEN: 'hvs.x', VAULT_ROLE_ID: 'role', VAULT_SECRET_ID: 'secret' }),
    ).toEqual([
      'VAULT_TOKEN and VAULT_ROLE_ID/VAULT_SECRET_ID must not both be set: choose a token or an AppRole login',
    ]);
  });

  it('VAULT_ADDR must be https unless it is on loopback', () => {
    expect(problemsOf({ ...VAULT, VAULT_TOKEN: 'hvs.x', VAULT_ADDR: 'http://vault.internal:8200' })).toEqual([
      'VAULT_ADDR must start with https:// (plain http:// is accepted only for a loopback address such as a local Vault Agent)',
    ]);
    expect(
      load({ ...VAULT, VAULT_TOKEN: 'hvs.x', VAULT_ADDR: 'http://127.0.0.1:8200' }).encryption.provider,
    ).toBe('hashicorp-vault');
  });

  it('ENCRYPTION_AWS_KMS_REGION must look like an AWS region', () => {
    expect(problemsOf({ ENCRYPTION_AWS_KMS_REGION: 'Europe' })).toEqual([
      'ENCRYPTION_AWS_KMS_REGION must be an AWS region such as eu-west-1',
    ]);
    expect(load({ ENCRYPTION_AWS_KMS_REGION: 'eu-west-1' }).encryption.awsKms.region).toBe('eu-west-1');
  });
});

describe('secrets', () => {
  it('print as [redacted] in every form', () => {
    const config = load({
      ENCRYPTION_KEY: KEY_A,
      JWT_SECRET: 'j'.repeat(40),
      DATABASE_URL: 'postgres://user:hunter2hunter2@db:5432/signal',
    });
    const printed = [
      JSON.stringify(config),
      inspect(config, { depth: 10 }),
      String(config.encryption.key),
      `${config.database.url}`,
    ].join('\n');
    expect(printed).not.toContain(KEY_A);
    expect(printed).not.toContain('jjjjjjjj');
    expect(printed).not.toContain('hunter2');
    expect(printed).toContain('[redacted]');
    expect(config.management.jwtSecret?.reveal()).toBe('j'.repeat(40));
  });

  it('JWT_SECRET must be at least 32 bytes', () => {
    expect(problemsOf({ JWT_SECRET: 'short' })).toEqual([
      'JWT_SECRET must be at least 32 bytes long (got 5)',
    ]);
  });

  it('METRICS_TOKEN must be at least 32 bytes, is never printed, and is absent (null) by default', () => {
    expect(problemsOf({ METRICS_TOKEN: 'scrape-me' })).toEqual([
      'METRICS_TOKEN must be at least 32 bytes long (got 9)',
    ]);
    const config = load({ METRICS_TOKEN: 'm'.repeat(32) });
    expect(config.metricsToken?.reveal()).toBe('m'.repeat(32));
    expect(JSON.stringify(config)).not.toContain('m'.repeat(32));
    expect(load({}).metricsToken).toBeNull();
  });

  it('a bad DATABASE_URL is reported without echoing it', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://root:topsecret@db/x' });
    expect(problems).toEqual(['DATABASE_URL must be a URL starting with postgres:// or postgresql://']);
  });
});

describe('numbers, lists and cross-field rules', () => {
  it.each([
    ['PORT', '70000', 'PORT must be a whole number from 0 to 65535 (got "70000")'],
    ['MAX_BATCH_SIZE', 'lots', 'MAX_BATCH_SIZE must be a whole number from 1 to 10000 (got "lots")'],
    ['DB_MAX_CONNS', '0', 'DB_MAX_CONNS must be a whole number from 1 to 1000 (got "0")'],
    ['LOG_LEVEL', 'verbose', 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent'],
    [
      'SIGNAL_NAMESPACE',
      'prod.eu',
      'SIGNAL_NAMESPACE must be 1-48 characters of A-Z a-z 0-9 _ - starting with a letter or digit',
    ],
  ])('%s=%s is refused', (name, value, message) => {
    expect(problemsOf({ [name]: value })).toEqual([message]);
  });

  it('parses CORS_ORIGINS and refuses a wildcard', () => {
    expect(load({ CORS_ORIGINS: 'https://a.example, https://b.example' }).gateway.corsOrigins).toEqual([
      'https://a.example',
      'https://b.example',
    ]);
    expect(problemsOf({ CORS_ORIGINS: '*' })[0]).toMatch(/^CORS_ORIGINS must be .*wildcard/);
  });

  it('parses TRUSTED_PROXY_CIDRS, names a bad entry, and wants hops to go with it', () => {
    const hopsAndList = {
      TRUSTED_PROXY_HOPS: '1',
      TRUSTED_PROXY_CIDRS: '10.0.0.0/8, 2001:db8::/32,192.0.2.10',
    };
    expect(load(hopsAndList).gateway.trustedProxyCidrs).toEqual([
      '10.0.0.0/8',
      '2001:db8::/32',
      '192.0.2.10',
    ]);
    expect(load({}).gateway.trustedProxyCidrs).toEqual([]);
    expect(problemsOf({ TRUSTED_PROXY_HOPS: '1', TRUSTED_PROXY_CIDRS: '10.0.0.0/33' })[0]).toMatch(
      /^TRUSTED_PROXY_CIDRS must be a comma-separated list of IP addresses or CIDR ranges \("10\.0\.0\.0\/33" is not/,
    );
    expect(problemsOf({ TRUSTED_PROXY_HOPS: '1', TRUSTED_PROXY_CIDRS: 'ingress.local' })).toHaveLength(1);
    expect(problemsOf({ TRUSTED_PROXY_CIDRS: '10.0.0.0/8' })).toEqual([
      'TRUSTED_PROXY_HOPS must be at least 1 when TRUSTED_PROXY_CIDRS is set (with 0 hops X-Forwarded-For is ignored and the list would do nothing)',
    ]);
  });

  it('takes the operator org as a slug, default demo', () => {
    expect(load({}).management.operatorOrg).toBe('demo');
    expect(load({ SIGNAL_OPERATOR_ORG: 'ops-team' }).management.operatorOrg).toBe('ops-team');
    expect(problemsOf({ SIGNAL_OPERATOR_ORG: 'Ops Team' })[0]).toMatch(
      /^SIGNAL_OPERATOR_ORG must be an org slug \(lowercase letters, digits and inner hyphens, 1–64 characters\)/,
    );
  });

  it('refuses a body budget smaller than one body, naming both variables', () => {
    expect(load({ MAX_BUFFERED_BODY_BYTES: '1048576', MAX_PAYLOAD_SIZE: '1048576' }).gateway).toMatchObject({
      maxBufferedBodyBytes: 1048576,
      maxPayloadSize: 1048576,
    });
    expect(problemsOf({ MAX_BUFFERED_BODY_BYTES: '1048576', MAX_PAYLOAD_SIZE: '2097152' })).toEqual([
      'MAX_BUFFERED_BODY_BYTES (1048576) must be at least MAX_PAYLOAD_SIZE (2097152): otherwise a body of the allowed size could never be read',
    ]);
    expect(problemsOf({ MAX_BUFFERED_BODY_BYTES: '1000' })[0]).toMatch(/^MAX_BUFFERED_BODY_BYTES must be/);
  });

  it('parses DELIVERY_ALLOWED_PRIVATE_CIDRS and names a bad entry', () => {
    expect(
      load({ DELIVERY_ALLOWED_PRIVATE_CIDRS: '10.20.0.0/16,fd00::/8' }).delivery.allowedPrivateCidrs,
    ).toEqual(['10.20.0.0/16', 'fd00::/8']);
    expect(problemsOf({ DELIVERY_ALLOWED_PRIVATE_CIDRS: 'internal.example' })[0]).toMatch(
      /^DELIVERY_ALLOWED_PRIVATE_CIDRS must be a comma-separated list of IP addresses or CIDR ranges/,
    );
  });

  it('BUS=kafka needs brokers; brokers must be host:port', () => {
    expect(problemsOf({ BUS: 'kafka' })).toEqual([
      'KAFKA_BROKERS must list at least one host:port when BUS is kafka',
    ]);
    expect(problemsOf({ KAFKA_BROKERS: 'kafka-1' })[0]).toMatch(/^KAFKA_BROKERS must be .*host:port/);
    expect(load({ BUS: 'kafka', KAFKA_BROKERS: 'k1:9092,k2:9092' }).bus.kafka.brokers).toEqual([
      'k1:9092',
      'k2:9092',
    ]);
  });

  it('Kafka defaults: replication factor 3, partitions 12/8/3, no SASL, no CA, the service names itself', () => {
    expect(load({ BUS: 'kafka', KAFKA_BROKERS: 'k1:9092' }).bus.kafka).toMatchObject({
      clientId: null,
      tls: { enabled: false, caCertPath: null },
      sasl: null,
      replicationFactor: 3,
      partitions: { rawEvents: 12, delivery: 8, dlq: 3 },
    });
  });

  it('Kafka replication factor and partitions: whole numbers in range, named when wrong', () => {
    const kafka = load({ KAFKA_REPLICATION_FACTOR: '1', KAFKA_RAW_EVENTS_PARTITIONS: '24' }).bus.kafka;
    expect(kafka.replicationFactor).toBe(1);
    expect(kafka.partitions.rawEvents).toBe(24);
    expect(problemsOf({ KAFKA_REPLICATION_FACTOR: '0' })[0]).toMatch(
      /^KAFKA_REPLICATION_FACTOR must be a whole number from 1 to 32/,
    );
    expect(problemsOf({ KAFKA_DLQ_PARTITIONS: 'three' })[0]).toMatch(/^KAFKA_DLQ_PARTITIONS must be/);
  });

  it('Kafka SASL: the mechanism needs both credentials, and the error names both variables', () => {
    expect(problemsOf({ KAFKA_SASL_MECHANISM: 'scram-sha-512' })).toEqual([
      'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set when KAFKA_SASL_MECHANISM is scram-sha-512 (KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD go together)',
    ]);
    expect(problemsOf({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'signal' })[0]).toMatch(
      /^KAFKA_SASL_PASSWORD must be set when KAFKA_SASL_MECHANISM is scram-sha-256/,
    );
    expect(problemsOf({ KAFKA_SASL_USERNAME: 'signal', KAFKA_SASL_PASSWORD: 'pw' })).toEqual([
      'KAFKA_SASL_MECHANISM must be set (plain, scram-sha-256 or scram-sha-512) when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set',
    ]);
    expect(problemsOf({ KAFKA_SASL_MECHANISM: 'gssapi' })[0]).toBe(
      'KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512',
    );
  });

  it('Kafka SASL/PLAIN is refused without TLS; the password stays redacted', () => {
    const env = {
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'signal',
      KAFKA_SASL_PASSWORD: 'hunter2-pw',
    };
    const problems = problemsOf(env);
    expect(problems).toEqual([
      'KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_TLS_ENABLED=true, or use scram-sha-256 or scram-sha-512',
    ]);
    const config = load({ ...env, KAFKA_TLS_ENABLED: 'true' });
    expect(config.bus.kafka.sasl?.mechanism).toBe('plain');
    expect(config.bus.kafka.sasl?.username).toBe('signal');
    expect(config.bus.kafka.sasl?.password.reveal()).toBe('hunter2-pw');
    expect(JSON.stringify(config)).not.toContain('hunter2-pw');
    expect(inspect(config, { depth: 10 })).not.toContain('hunter2-pw');
  });

  it('compresses one-request batches on the postgres bus unless BUS_COMPRESS_BATCHES=false', () => {
    expect(load().bus.compressBatches).toBe(true);
    expect(load({ BUS_COMPRESS_BATCHES: 'false' }).bus.compressBatches).toBe(false);
    expect(problemsOf({ BUS_COMPRESS_BATCHES: 'off-ish' })).toEqual([
      'BUS_COMPRESS_BATCHES must be true or false',
    ]);
  });

  it('a Kafka CA path needs KAFKA_TLS_ENABLED (never a silent plaintext connection)', () => {
    expect(problemsOf({ KAFKA_TLS_CA_CERT_PATH: '/etc/signal/kafka-ca/ca.crt' })).toEqual([
      'KAFKA_TLS_CA_CERT_PATH is set but KAFKA_TLS_ENABLED is not true: set KAFKA_TLS_ENABLED=true (a CA is only used over TLS)',
    ]);
    expect(
      load({ KAFKA_TLS_CA_CERT_PATH: '/etc/signal/kafka-ca/ca.crt', KAFKA_TLS_ENABLED: 'true' }).bus.kafka
        .tls,
    ).toEqual({ enabled: true, caCertPath: '/etc/signal/kafka-ca/ca.crt' });
  });

  it('KAFKA_CLIENT_ID: the characters Kafka client ids take', () => {
    expect(load({ KAFKA_CLIENT_ID: 'shop-signal.prod' }).bus.kafka.clientId).toBe('shop-signal.prod');
    expect(problemsOf({ KAFKA_CLIENT_ID: 'shop signal' })[0]).toMatch(/^KAFKA_CLIENT_ID must be 1-128/);
  });

  it('TLS certificate and key go together', () => {
    expect(problemsOf({ TLS_CERT_PATH: '/certs/tls.crt' })[0]).toMatch(/TLS_CERT_PATH and TLS_KEY_PATH/);
  });

  it('rediss:// implies Redis TLS', () => {
    expect(load({ REDIS_URL: 'rediss://cache:6380' }).redis.tls.enabled).toBe(true);
  });

  it('reports every problem at once', () => {
    expect(problemsOf({ PORT: 'x', ENCRYPTION_KEY: 'y', LOG_LEVEL: 'z' })).toHaveLength(3);
  });
});

describe('signal.yaml', () => {
  it('reads ./signal.yaml and lets env win', () => {
    writeFileSync(
      join(dir, 'signal.yaml'),
      [
        'encryption:',
        '  provider: gcp-kms',
        '  require_encryption: true',
        '  gcp_kms:',
        '    key_resource_name: "projects/p/locations/global/keyRings/signal/cryptoKeys/dek"',
        'redis:',
        '  address: "redis://redis.internal:6380"',
        '  tls:',
        '    enabled: true',
        '    ca_cert_path: /certs/ca.crt',
        'port: 9000',
      ].join('\n'),
    );
    const config = load({ PORT: '9100' });
    expect(config.configFile).toBe(join(dir, 'signal.yaml'));
    expect(config.encryption.provider).toBe('gcp-kms');
    expect(config.encryption.requireEncryption).toBe(true);
    expect(config.encryption.gcpKms.keyResourceName).toBe(
      'projects/p/locations/global/keyRings/signal/cryptoKeys/dek',
    );
    expect(config.redis.tls).toEqual({ enabled: true, caCertPath: '/certs/ca.crt' });
    expect(config.port).toBe(9100);
  });

  it('reads the file named by SIGNAL_CONFIG', () => {
    writeFileSync(join(dir, 'other.yaml'), 'gateway:\n  max_batch_size: 50\n');
    expect(load({ SIGNAL_CONFIG: join(dir, 'other.yaml') }).gateway.maxBatchSize).toBe(50);
  });

  it('a missing SIGNAL_CONFIG file is an error', () => {
    expect(problemsOf({ SIGNAL_CONFIG: join(dir, 'nope.yaml') })[0]).toMatch(
      /^SIGNAL_CONFIG must name an existing file/,
    );
  });

  it('names the YAML key and the variable when a YAML value is bad', () => {
    expect(problemsOf({}, 'encryption:\n  key: abc\n')).toEqual([
      `encryption.key in ${join(dir, 'signal.yaml')} (ENCRYPTION_KEY) must be exactly 64 hexadecimal characters (got 3)`,
    ]);
  });

  it('refuses unknown keys so typos do not pass silently', () => {
    expect(problemsOf({}, 'encryption:\n  requre_encryption: true\n')[0]).toMatch(
      /encryption\.requre_encryption .* is not a known setting/,
    );
  });

  it('refuses invalid YAML', () => {
    expect(problemsOf({}, 'encryption: [\n')[0]).toMatch(/must be valid YAML/);
  });
});
