import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../test/tls-fixtures';
import { createDatabase } from './create-database';
import { isStoreError, type StoreError } from './errors';
import type { Database } from './port';

const available = await postgresAvailable();

/** The first message of a client asking for TLS: length 8, request code 80877103. */
const SSL_REQUEST_CODE = 80877103;

interface TlsTerminator {
  readonly port: number;
  /** Connections that completed a TLS handshake. */
  readonly secured: number;
  /** Connections whose first message was not an SSLRequest (a client talking plaintext). */
  readonly plaintext: number;
  close(): Promise<void>;
}

/**
 * A TLS-terminating Postgres front: answers an SSLRequest with 'S', completes TLS with the test server
 * certificate, then relays the decrypted stream to the real (plaintext) local PostgreSQL.
 */
async function startTlsTerminator(pki: TestPki, upstream: URL): Promise<TlsTerminator> {
  const sockets = new Set<Socket>();
  const counts = { secured: 0, plaintext: 0 };
  const server: Server = createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => raw.destroy());
    raw.once('data', (first) => {
      if (first.length < 8 || first.readInt32BE(4) !== SSL_REQUEST_CODE) {
        counts.plaintext += 1;
        raw.destroy();
        return;
      }
      raw.write('S');
      const secure = new TLSSocket(raw, { isServer: true, key: pki.serverKey, cert: pki.serverCert });
      secure.on('error', () => raw.destroy());
      secure.once('secure', () => {
        counts.secured += 1;
        const db = netConnect(Number(upstream.port), upstream.hostname);
        sockets.add(db);
        db.on('close', () => sockets.delete(db));
        db.on('error', () => secure.destroy());
        secure.pipe(db).pipe(secure);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    port: address.port,
    get secured() {
      return counts.secured;
    },
    get plaintext() {
      return counts.plaintext;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  try {
    await promise;
  } catch (err) {
    if (isStoreError(err)) return err;
    throw err;
  }
  throw new Error('expected a StoreError');
}

describe.skipIf(!available)('PostgreSQL over TLS', () => {
  let pki: TestPki;
  let front: TlsTerminator;
  const opened: Database[] = [];

  function urlVia(params: Record<string, string>): string {
    const url = new URL(POSTGRES_URL);
    url.hostname = '127.0.0.1';
    url.port = String(front.port);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.toString();
  }

  beforeAll(async () => {
    pki = createTestPki();
    front = await startTlsTerminator(pki, new URL(POSTGRES_URL));
  });

  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()));
    await front.close();
    pki.remove();
  });

  it('connects with sslmode=verify-full and the CA from the options', async () => {
    const before = front.secured;
    const db = await createDatabase({
      kind: 'postgres',
      url: urlVia({ sslmode: 'verify-full' }),
      maxConnections: 1,
      tls: { caPath: pki.caPath },
    });
    opened.push(db);
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(front.secured).toBeGreaterThan(before);
  });

  it('takes the CA from sslrootcert in the URL', async () => {
    const db = await createDatabase({
      kind: 'postgres',
      url: urlVia({ sslmode: 'verify-full', sslrootcert: pki.caPath }),
      maxConnections: 1,
    });
    opened.push(db);
    expect((await db.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });

  it('checks the certificate against the configured server name', async () => {
    const good = await createDatabase({
      kind: 'postgres',
      url: urlVia({}),
      maxConnections: 1,
      tls: { caPath: pki.caPath, servername: 'localhost' },
    });
    opened.push(good);
    expect((await good.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);

    const err = await storeError(
      createDatabase({
        kind: 'postgres',
        url: urlVia({}),
        maxConnections: 1,
        tls: { caPath: pki.caPath, servername: 'db.other.example' },
      }),
    );
    expect(err.code).toBe('tls_failed');
  });

  it('fails on a certificate from another CA and never retries in plaintext', async () => {
    const plaintextBefore = front.plaintext;
    const err = await storeError(
      createDatabase({
        kind: 'postgres',
        url: urlVia({ sslmode: 'verify-full' }),
        maxConnections: 1,
        tls: { caPath: pki.wrongCaPath },
      }),
    );
    expect(err.code).toBe('tls_failed');
    expect(err.retryable).toBe(false);
    expect(front.plaintext).toBe(plaintextBefore);
  });

  it('does not trust a private CA it was not given (sslmode=require is verified too)', async () => {
    const err = await storeError(
      createDatabase({ kind: 'postgres', url: urlVia({ sslmode: 'require' }), maxConnections: 1 }),
    );
    expect(err.code).toBe('tls_failed');
  });
});
