import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createServer,
  createTestPki,
  createVendorDispatcher,
  request,
  type SignalHttpServer,
  sendJson,
  type TestCa,
  type TestCertificate,
  type TestPki,
  TLS12_CIPHER_SUITES,
  TLS13_CIPHER_SUITES,
} from '../src/index';
import { closeServer, handshake, listenLoopback } from './helpers';

/** The server side of the TLS policy, checked with real handshakes against 127.0.0.1. */

const LEGACY_TLS = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;
/** TLS 1.2 CBC suites (no AEAD): a client offering only these must be refused. */
const CBC_ONLY = {
  maxVersion: 'TLSv1.2',
  ciphers:
    'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256',
} as const;

let pki: TestPki;
let ca: TestCa;
let cert: TestCertificate;
let server: SignalHttpServer;
let port: number;
let handled = 0;
const cleanups: Array<() => Promise<void>> = [];

async function startServer(minVersion?: 'TLSv1.2' | 'TLSv1.3', certificate = cert) {
  const started = createServer({
    tls: {
      certPath: certificate.certPath,
      keyPath: certificate.keyPath,
      ...(minVersion ? { minVersion } : {}),
    },
    handler: (_req, res) => {
      handled += 1;
      sendJson(res, 200, { hello: 'world' });
    },
  });
  const address = await started.listen(0, '127.0.0.1');
  cleanups.push(() => started.close(100));
  return { server: started, port: address.port };
}

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa();
  cert = await ca.issueServerCertificate();
  ({ server, port } = await startServer());
});

afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
  await pki.cleanup();
});

describe('TLS server policy (default minimum TLS 1.2)', () => {
  it('negotiates TLS 1.3 with a modern client', async () => {
    const result = await handshake(port, { ca: ca.certPem, servername: 'localhost' });
    expect(result).toMatchObject({ ok: true, protocol: 'TLSv1.3', fingerprint256: cert.fingerprint256 });
    expect(result.ok && (TLS13_CIPHER_SUITES as readonly string[]).includes(result.cipher)).toBe(true);
  });

  it('accepts a TLS 1.2-only client and picks an ECDHE + AEAD suite', async () => {
    const result = await handshake(port, { ca: ca.certPem, maxVersion: 'TLSv1.2' });
    expect(result).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
    expect(result.ok && (TLS12_CIPHER_SUITES as readonly string[]).includes(result.cipher)).toBe(true);
  });

  it('refuses a TLS 1.1 client (that a permissive server would accept)', async () => {
    const permissive = createTlsServer({ cert: cert.certPem, key: cert.keyPem, ...LEGACY_TLS }, (s) =>
      s.end(),
    );
    const permissivePort = await listenLoopback(permissive);
    cleanups.push(() => closeServer(permissive));
    expect(await handshake(permissivePort, { ca: ca.certPem, ...LEGACY_TLS })).toMatchObject({
      ok: true,
      protocol: 'TLSv1.1',
    });

    const refused = await handshake(port, { ca: ca.certPem, ...LEGACY_TLS });
    expect(refused).toEqual({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  });

  it('refuses a TLS 1.2 client offering only CBC (non-AEAD) suites (that a default server would accept)', async () => {
    const permissive = createTlsServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.end());
    const permissivePort = await listenLoopback(permissive);
    cleanups.push(() => closeServer(permissive));
    expect(await handshake(permissivePort, { ca: ca.certPem, ...CBC_ONLY })).toMatchObject({ ok: true });

    const refused = await handshake(port, { ca: ca.certPem, ...CBC_ONLY });
    expect(refused).toEqual({ ok: false, code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
  });

  it('refuses static-RSA key exchange (no forward secrecy) even with GCM', async () => {
    const rsaCert = await ca.issueServerCertificate({ keyType: 'rsa' });
    const rsa = await startServer(undefined, rsaCert);
    const ecdhe = await handshake(rsa.port, { ca: ca.certPem, maxVersion: 'TLSv1.2' });
    expect(ecdhe).toMatchObject({ ok: true, cipher: 'ECDHE-RSA-AES256-GCM-SHA384' });

    const refused = await handshake(rsa.port, {
      ca: ca.certPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'AES128-GCM-SHA256',
    });
    expect(refused).toEqual({ ok: false, code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
  });

  it('serves HTTP requests over TLS to the strict client', async () => {
    const dispatcher = createVendorDispatcher({ extraCaPem: ca.certPem });
    const before = handled;
    const result = await request(dispatcher, { url: `https://127.0.0.1:${port}/anything`, method: 'GET' });
    expect(result).toMatchObject({ type: 'response', status: 200, body: '{"hello":"world"}' });
    expect(handled).toBe(before + 1);
    await dispatcher.close();
  });

  it('applies bounded timeouts and refuses oversized request heads', async () => {
    expect(server.server.headersTimeout).toBe(15_000);
    expect(server.server.requestTimeout).toBe(30_000);
    expect(server.server.keepAliveTimeout).toBe(65_000);

    const dispatcher = createVendorDispatcher({ extraCaPem: ca.certPem });
    const before = handled;
    const result = await request(dispatcher, {
      url: `https://127.0.0.1:${port}/`,
      method: 'GET',
      headers: { 'x-padding': 'a'.repeat(17 * 1024) },
    });
    expect(result).toMatchObject({ type: 'response', status: 431 });
    expect(handled).toBe(before);
    await dispatcher.destroy();
  });
});

describe('TLS server policy with TLS_MIN_VERSION=1.3', () => {
  it('refuses TLS 1.2 and accepts TLS 1.3', async () => {
    const strict = await startServer('TLSv1.3');
    expect(await handshake(strict.port, { ca: ca.certPem, maxVersion: 'TLSv1.2' })).toEqual({
      ok: false,
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
    expect(await handshake(strict.port, { ca: ca.certPem })).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
  });
});

describe('graceful close', () => {
  // The 5 s test timeout is far below the 20 s close deadline: close must not wait for the deadline just
  // because the client keeps its connection alive.
  it('lets an in-flight request finish, then closes its keep-alive connection and stops accepting', async () => {
    let release: () => void = () => {};
    const slow = createServer({
      tls: { certPath: cert.certPath, keyPath: cert.keyPath },
      handler: (_req, res) => {
        release = () => sendJson(res, 200, { done: true });
      },
    });
    const { port: slowPort } = await slow.listen(0, '127.0.0.1');
    const dispatcher = createVendorDispatcher({ extraCaPem: ca.certPem });
    const inFlight = request(dispatcher, { url: `https://127.0.0.1:${slowPort}/`, method: 'GET' });
    await new Promise((resolve) => setTimeout(resolve, 100));

    const closing = slow.close(20_000);
    release();

    expect(await inFlight).toMatchObject({ type: 'response', status: 200, body: '{"done":true}' });
    await closing;
    expect(await handshake(slowPort, { ca: ca.certPem })).toEqual({ ok: false, code: 'ECONNREFUSED' });
    await dispatcher.close();
  }, 5_000);
});
