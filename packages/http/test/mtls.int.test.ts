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
  type VendorRequestResult,
} from '../src/index';
import { tlsExchange } from './helpers';

/**
 * mTLS for internal calls: only clients holding a certificate from the configured CA get through. With
 * TLS 1.3 the server checks the client certificate after the client's side of the handshake is done, so a
 * client sees the refusal only as a closed connection (an HTTP client reports a network error); what
 * matters here is that no request ever reaches the handler.
 */

const DAY = 86_400_000;
let pki: TestPki;
let serverCa: TestCa;
let clientCa: TestCa;
let server: SignalHttpServer;
let port: number;
const peers: string[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  serverCa = await pki.createCa({ commonName: 'Server CA' });
  clientCa = await pki.createCa({ commonName: 'Internal Client CA' });
  const cert = await serverCa.issueServerCertificate();
  server = createServer({
    tls: {
      certPath: cert.certPath,
      keyPath: cert.keyPath,
      caPath: clientCa.certPath,
      requestClientCert: true,
    },
    handler: (req, res) => {
      const socket = req.socket as import('node:tls').TLSSocket;
      peers.push(String(socket.getPeerCertificate().subject.CN));
      sendJson(res, 200, { ok: true });
    },
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server.close(100);
  await pki.cleanup();
});

async function callAs(client: TestCertificate | undefined): Promise<VendorRequestResult> {
  const dispatcher = createVendorDispatcher({
    extraCaPem: serverCa.certPem,
    ...(client === undefined
      ? {}
      : { clientCertificate: { certPem: client.certPem, keyPem: client.keyPem } }),
  });
  try {
    return await request(dispatcher, {
      url: `https://127.0.0.1:${port}/internal`,
      method: 'POST',
      body: '{"secret":"payload"}',
      headers: { 'content-type': 'application/json' },
    });
  } finally {
    await dispatcher.destroy();
  }
}

describe('mTLS server', () => {
  it('accepts a client certificate issued by the configured CA', async () => {
    const client = await clientCa.issueClientCertificate({ commonName: 'delivery-worker' });
    expect(await callAs(client)).toMatchObject({ type: 'response', status: 200 });
    expect(peers).toContain('delivery-worker');
  });

  it('refuses a client without a certificate before any request is handled', async () => {
    const before = peers.length;
    expect(await tlsExchange(port, { ca: serverCa.certPem })).toMatchObject({ ok: false });
    expect(await callAs(undefined)).toMatchObject({ type: 'network_error', ok: false });
    expect(peers).toHaveLength(before);
  });

  it('refuses a client certificate from another CA', async () => {
    const strangerCa = await pki.createCa({ commonName: 'Stranger CA' });
    const stranger = await strangerCa.issueClientCertificate({ commonName: 'intruder' });
    const raw = { ca: serverCa.certPem, cert: stranger.certPem, key: stranger.keyPem };
    expect(await tlsExchange(port, raw)).toMatchObject({ ok: false });
    expect(await callAs(stranger)).toMatchObject({ type: 'network_error', ok: false });
    expect(peers).not.toContain('intruder');
  });

  it('refuses an expired client certificate from the right CA', async () => {
    const expired = await clientCa.issueClientCertificate({
      commonName: 'expired-worker',
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const raw = { ca: serverCa.certPem, cert: expired.certPem, key: expired.keyPem };
    expect(await tlsExchange(port, raw)).toMatchObject({ ok: false });
    expect(await callAs(expired)).toMatchObject({ type: 'network_error', ok: false });
    expect(peers).not.toContain('expired-worker');
  });

  it('with TLS 1.2, refuses a client without a certificate inside the handshake', async () => {
    const result = await tlsExchange(port, { ca: serverCa.certPem, maxVersion: 'TLSv1.2' });
    expect(result).toEqual({ ok: false, code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
  });

  it('answers a valid client over the same raw probe (the refusals above are not probe artefacts)', async () => {
    const client = await clientCa.issueClientCertificate({ commonName: 'probe' });
    const result = await tlsExchange(port, {
      ca: serverCa.certPem,
      cert: client.certPem,
      key: client.keyPem,
    });
    expect(result.ok && result.response.startsWith('HTTP/1.1 200')).toBe(true);
  });

  it('requires the client CA when client certificates are requested', async () => {
    const cert = await serverCa.issueServerCertificate();
    expect(() =>
      createServer({
        tls: { certPath: cert.certPath, keyPath: cert.keyPath, requestClientCert: true },
        handler: () => {},
      }),
    ).toThrow(/requestClientCert needs caPath/);
  });
});
