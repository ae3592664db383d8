import { describe, expect, it } from 'vitest';
import { isStoreError } from './errors';
import { type PostgresDatabaseOptions, resolvePoolConfig } from './postgres-connection';

const PASSWORD = 's3cr3t-p4ss';
const BASE = `postgres://signal:${PASSWORD}@db.internal:5432/signal`;

function options(overrides: Partial<PostgresDatabaseOptions> = {}): PostgresDatabaseOptions {
  return { kind: 'postgres', url: BASE, maxConnections: 10, ...overrides };
}

const files: Record<string, string> = { '/etc/signal/db-ca.pem': 'CA PEM' };
const readFile = (path: string): string => {
  const content = files[path];
  if (content === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
  return content;
};

function configError(opts: PostgresDatabaseOptions): string {
  try {
    resolvePoolConfig(opts, readFile);
  } catch (err) {
    if (isStoreError(err) && err.code === 'invalid_config') {
      expect(err.message).not.toContain(PASSWORD);
      return err.message;
    }
    throw err;
  }
  throw new Error('expected invalid_config');
}

describe('resolvePoolConfig', () => {
  it('connects in plaintext only when neither the URL nor the options ask for TLS', () => {
    const config = resolvePoolConfig(options(), readFile);
    expect(config.ssl).toBe(false);
    expect(config.max).toBe(10);
    expect(config.statement_timeout).toBe(30_000);
  });

  it('turns sslmode=verify-full into verified TLS with the host as server name', () => {
    const config = resolvePoolConfig(options({ url: `${BASE}?sslmode=verify-full` }), readFile);
    expect(config.ssl).toEqual({
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      servername: 'db.internal',
    });
    expect(config.connectionString).not.toContain('sslmode');
  });

  it.each(['require', 'verify-ca'])(
    'treats sslmode=%s as verify-full, never skipping verification',
    (mode) => {
      const config = resolvePoolConfig(options({ url: `${BASE}?sslmode=${mode}` }), readFile);
      expect(config.ssl).toMatchObject({ rejectUnauthorized: true });
      expect(config.ssl).not.toHaveProperty('checkServerIdentity');
    },
  );

  it('loads the CA from the options or from sslrootcert', () => {
    const fromOptions = resolvePoolConfig(options({ tls: { caPath: '/etc/signal/db-ca.pem' } }), readFile);
    expect(fromOptions.ssl).toMatchObject({ ca: 'CA PEM', rejectUnauthorized: true });
    const fromUrl = resolvePoolConfig(
      options({ url: `${BASE}?sslmode=verify-full&sslrootcert=/etc/signal/db-ca.pem` }),
      readFile,
    );
    expect(fromUrl.ssl).toMatchObject({ ca: 'CA PEM' });
    expect(fromUrl.connectionString).not.toContain('sslrootcert');
  });

  it('leaves the server name unset for an IP host unless one is configured', () => {
    const ipUrl = `postgres://signal:${PASSWORD}@10.0.0.5:5432/signal?sslmode=verify-full`;
    expect(resolvePoolConfig(options({ url: ipUrl }), readFile).ssl).not.toHaveProperty('servername');
    const named = resolvePoolConfig(options({ url: ipUrl, tls: { servername: 'db.internal' } }), readFile);
    expect(named.ssl).toMatchObject({ servername: 'db.internal' });
  });

  it.each(['allow', 'prefer'])('refuses sslmode=%s, which may fall back to plaintext', (mode) => {
    expect(configError(options({ url: `${BASE}?sslmode=${mode}` }))).toContain(`sslmode=${mode}`);
  });

  it('refuses contradictory TLS settings', () => {
    expect(
      configError(options({ url: `${BASE}?sslmode=disable`, tls: { caPath: '/etc/signal/db-ca.pem' } })),
    ).toContain('sslmode=disable');
    expect(
      configError(
        options({ url: `${BASE}?sslrootcert=/etc/other.pem`, tls: { caPath: '/etc/signal/db-ca.pem' } }),
      ),
    ).toContain('different paths');
  });

  it('names an unreadable CA file without leaking the URL', () => {
    expect(configError(options({ tls: { caPath: '/missing/ca.pem' } }))).toContain('/missing/ca.pem');
  });

  it('refuses unsupported libpq TLS parameters instead of ignoring them', () => {
    expect(configError(options({ url: `${BASE}?sslcert=/c.pem&sslkey=/k.pem` }))).toContain('sslcert');
  });

  it('validates the URL scheme, pool size and schema name', () => {
    expect(configError(options({ url: `mysql://signal:${PASSWORD}@db/signal` }))).toContain('postgres://');
    expect(configError(options({ url: 'not a url' }))).toContain('DATABASE_URL');
    expect(configError(options({ maxConnections: 0 }))).toContain('DB_MAX_CONNS');
    expect(configError(options({ schema: 'Robert"; DROP TABLE students;--' }))).toContain('schema');
  });

  it('sets search_path for the schema and keeps startup options from the URL', () => {
    const config = resolvePoolConfig(
      options({ url: `${BASE}?options=-c%20lock_timeout%3D5000`, schema: 'signal_ns1' }),
      readFile,
    );
    expect(config.options).toBe('-c lock_timeout=5000 -c search_path=signal_ns1');
    expect(config.connectionString).not.toContain('options');
  });

  it('bounds waiting for an answer on the client too, beyond the server statement timeout', () => {
    const defaults = resolvePoolConfig(options(), readFile);
    expect(defaults.query_timeout).toBe(35_000);
    expect(defaults).toMatchObject({ keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    expect(resolvePoolConfig(options({ statementTimeoutMs: 1_000 }), readFile).query_timeout).toBe(6_000);
    expect(
      resolvePoolConfig(options({ statementTimeoutMs: 1_000, queryTimeoutMs: 1_500 }), readFile)
        .query_timeout,
    ).toBe(1_500);
    // Statement timeout off: no client bound either, unless one is asked for.
    expect(resolvePoolConfig(options({ statementTimeoutMs: 0 }), readFile)).not.toHaveProperty(
      'query_timeout',
    );
    expect(
      resolvePoolConfig(options({ statementTimeoutMs: 0, queryTimeoutMs: 500 }), readFile).query_timeout,
    ).toBe(500);
  });

  it('refuses a read timeout that would fire before the server statement timeout', () => {
    expect(configError(options({ statementTimeoutMs: 1_000, queryTimeoutMs: 1_000 }))).toContain(
      'must exceed statementTimeoutMs',
    );
    expect(configError(options({ queryTimeoutMs: 0 }))).toContain('queryTimeoutMs');
  });
});
