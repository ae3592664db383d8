import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { createDatabase, type Database, StoreError } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDRESS_IN_USE, requireOrSkip, run, startOnFreePort } from './support';

/**
 * PostgreSQL over TLS, end to end: a throw-away cluster (initdb in a temp dir, ssl=on with a certificate from
 * a test CA, TLS-only pg_hba: `hostnossl … reject`) on a free loopback port, and @signal/store's adapter
 * exactly as DATABASE_URL configures it. One cluster for the whole file; stopped and deleted after.
 */

/** The newest PostgreSQL server binaries installed (Debian layout), or null. */
function postgresBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : join(base, versions[0], 'bin');
}

const bin = postgresBin();
const available = requireOrSkip(
  bin !== null,
  'PostgreSQL server binaries (initdb, pg_ctl) are not installed',
);

/** initdb and postgres refuse to run as root: run them as the `postgres` user when we are root. */
const asRoot = process.getuid?.() === 0;
async function pg(command: string, args: readonly string[]): Promise<void> {
  const path = join(bin ?? '', command);
  if (asRoot) await run('runuser', ['-u', 'postgres', '--', path, ...args], { timeout: 60_000 });
  else await run(path, [...args], { timeout: 60_000 });
}

describe.skipIf(!available)('PostgreSQL over TLS (real throw-away cluster)', () => {
  let pki: TestPki;
  let ca: TestCa;
  let otherCa: TestCa;
  let dir: string;
  let dataDir: string;
  let logFile: string;
  let port: number;
  let started = false;
  const opened: Database[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
    ca = await pki.createCa();
    otherCa = await pki.createCa();
    const server = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    dir = mkdtempSync(join(tmpdir(), 'signal-pg-tls-'));
    dataDir = join(dir, 'data');
    logFile = join(dir, 'postgres.log');
    // PostgreSQL insists the key belongs to the server's user with mode 0600.
    const certFile = join(dir, 'server.crt');
    const keyFile = join(dir, 'server.key');
    copyFileSync(server.certPath, certFile);
    copyFileSync(server.keyPath, keyFile);
    if (asRoot) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      for (const path of [dir, certFile, keyFile]) chownSync(path, Number(stdout.trim()), Number(gid.trim()));
    }
    await pg('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    // TLS only over TCP: a plaintext attempt is rejected, and logged, by the server.
    writeFileSync(
      join(dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        'hostssl all all 127.0.0.1/32 trust',
        'hostnossl all all 127.0.0.1/32 reject',
        'hostssl all all ::1/128 trust',
        'hostnossl all all ::1/128 reject',
        '',
      ].join('\n'),
    );
    const options = (serverPort: number) =>
      [
        `-c port=${serverPort}`,
        "-c listen_addresses='127.0.0.1'",
        `-c unix_socket_directories='${dir}'`,
        '-c ssl=on',
        `-c ssl_cert_file='${certFile}'`,
        `-c ssl_key_file='${keyFile}'`,
        '-c ssl_min_protocol_version=TLSv1.2',
        '-c fsync=off',
        '-c log_connections=on',
      ].join(' ');
    // pg_ctl only says the start failed; why is in the server's log.
    const chosen = await startOnFreePort(
      async (serverPort) => {
        if (existsSync(logFile)) writeFileSync(logFile, ''); // this attempt's log only
        await pg('pg_ctl', [
          '-D',
          dataDir,
          '-l',
          logFile,
          '-w',
          '-t',
          '30',
          '-o',
          options(serverPort),
          'start',
        ]);
      },
      () => existsSync(logFile) && ADDRESS_IN_USE.test(readFileSync(logFile, 'utf8')),
    );
    port = chosen.port;
    started = true;
  });

  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()));
    if (started) await pg('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (pki) await pki.cleanup();
  });

  async function open(url: string, caPath?: string): Promise<Database> {
    const db = await createDatabase({
      kind: 'postgres',
      url,
      maxConnections: 2,
      connectTimeoutMs: 5_000,
      ...(caPath === undefined ? {} : { tls: { caPath } }),
    });
    opened.push(db);
    return db;
  }

  async function refusal(url: string, caPath?: string): Promise<StoreError> {
    try {
      const db = await open(url, caPath);
      await db.query('SELECT 1');
    } catch (err) {
      expect(err).toBeInstanceOf(StoreError);
      return err as StoreError;
    }
    throw new Error('expected the connection to be refused');
  }

  async function sessionIsEncrypted(db: Database): Promise<{ ssl: boolean; version: string }> {
    const result = await db.query<{ ssl: boolean; version: string }>(
      'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    const row = result.rows[0];
    if (row === undefined) throw new Error('no pg_stat_ssl row for this session');
    return row;
  }

  it('sslmode=verify-full with the CA (tls.caPath): an encrypted session, by host name and by IP', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const db = await open(`postgres://postgres@${host}:${port}/postgres?sslmode=verify-full`, ca.certPath);
      const session = await sessionIsEncrypted(db);
      expect(session.ssl, host).toBe(true);
      expect(session.version, host).toMatch(/^TLSv1\.[23]$/);
    }
  });

  it('sslrootcert in DATABASE_URL, as the chart and compose configure it', async () => {
    const db = await open(
      `postgres://postgres@localhost:${port}/postgres?sslmode=verify-full&sslrootcert=${ca.certPath}`,
    );
    expect((await sessionIsEncrypted(db)).ssl).toBe(true);
  });

  it('sslmode=require is held to verify-full: a certificate from another CA is refused with tls_failed', async () => {
    for (const mode of ['verify-full', 'require']) {
      const err = await refusal(
        `postgres://postgres@localhost:${port}/postgres?sslmode=${mode}`,
        otherCa.certPath,
      );
      expect(err.code, mode).toBe('tls_failed');
      expect(err.retryable).toBe(false);
    }
  });

  it('a certificate for another host name is refused with tls_failed', async () => {
    const db = createDatabase({
      kind: 'postgres',
      url: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=verify-full`,
      maxConnections: 1,
      tls: { caPath: ca.certPath, servername: 'db.internal.example' },
    });
    await expect(db).rejects.toMatchObject({ code: 'tls_failed' });
  });

  it('modes that may fall back to plaintext are refused before connecting', async () => {
    for (const mode of ['prefer', 'allow']) {
      const err = await refusal(`postgres://postgres@localhost:${port}/postgres?sslmode=${mode}`);
      expect(err.code, mode).toBe('invalid_config');
    }
  });

  it('no refused TLS attempt ever reached the server as a plaintext connection', async () => {
    await refusal(`postgres://postgres@localhost:${port}/postgres?sslmode=verify-full`, otherCa.certPath);
    const log = readFileSync(logFile, 'utf8');
    // The server did see the TLS sessions above…
    expect(log).toMatch(/connection authorized: user=postgres database=postgres.*SSL enabled/);
    // …and never a connection without encryption (pg_hba's hostnossl reject would have logged it).
    expect(log).not.toMatch(/no encryption/);
    // The detector works: a deliberate plaintext connection (sslmode=disable) is rejected and logged.
    await refusal(`postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`);
    await expect.poll(() => readFileSync(logFile, 'utf8'), { timeout: 5_000 }).toMatch(/no encryption/);
  });
});
