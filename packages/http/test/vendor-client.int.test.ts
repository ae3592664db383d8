import { getEventListeners } from 'node:events';
import {
  createServer as createHttpsServer,
  type Server as HttpsServer,
  type ServerOptions,
} from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestPki,
  createVendorDispatcher,
  request,
  type TestCa,
  type TestPki,
  type VendorRequestResult,
} from '../src/index';
import { closeServer, listenLoopback } from './helpers';

/**
 * Strict TLS towards vendors, against real TLS servers on 127.0.0.1: every bad certificate or protocol is
 * refused during the handshake, before a single request byte reaches the server, and comes back as a
 * classified value the delivery worker can act on.
 */

interface VendorServer {
  server: HttpsServer;
  port: number;
  /** Requests that reached the handler, with their bodies. */
  received: string[];
}

const DAY = 86_400_000;
let pki: TestPki;
let trustedCa: TestCa;
const servers: Array<HttpsServer | NetServer> = [];
const stalledSockets: Socket[] = [];

async function vendorServer(
  options: ServerOptions,
  respond: (res: import('node:http').ServerResponse, body: string) => void = (res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"events_received":1}');
  },
): Promise<VendorServer> {
  const received: string[] = [];
  const server = createHttpsServer(options, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push(body);
      respond(res, body);
    });
  });
  servers.push(server);
  return { server, port: await listenLoopback(server), received };
}

function post(
  port: number,
  dispatcher: ReturnType<typeof createVendorDispatcher>,
): Promise<VendorRequestResult> {
  return request(dispatcher, {
    url: `https://127.0.0.1:${port}/v1/events`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"event_id":"evt_1","email":"secret@example.com"}',
  });
}

function networkError(result: VendorRequestResult) {
  if (result.type !== 'network_error') throw new Error(`expected a network error, got HTTP ${result.status}`);
  return result.error;
}

beforeAll(async () => {
  pki = await createTestPki();
  trustedCa = await pki.createCa({ commonName: 'Vendor Private CA' });
});

afterAll(async () => {
  for (const socket of stalledSockets) socket.destroy();
  await Promise.all(servers.map(closeServer));
  await pki.cleanup();
});

describe('strict TLS client: certificate and protocol failures', () => {
  it('delivers to a server whose certificate chains to the configured extra CA', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem });
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem });

    const result = await post(vendor.port, dispatcher);

    expect(result).toMatchObject({ type: 'response', ok: true, status: 200, body: '{"events_received":1}' });
    expect(result.type === 'response' && result.headers['content-type']).toBe('application/json');
    expect(vendor.received).toEqual(['{"event_id":"evt_1","email":"secret@example.com"}']);
    await dispatcher.close();
  });

  it('does not trust a private CA unless it is configured (public roots only by default)', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem });
    const dispatcher = createVendorDispatcher();

    const error = networkError(await post(vendor.port, dispatcher));

    expect(error).toMatchObject({
      kind: 'tls_error',
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      retryable: false,
    });
    expect(vendor.received).toEqual([]);
    await dispatcher.close();
  });

  const refusals: Array<{ name: string; code: string; server: () => Promise<ServerOptions> }> = [
    {
      name: 'an expired certificate',
      code: 'CERT_HAS_EXPIRED',
      server: async () => {
        const cert = await trustedCa.issueServerCertificate({
          notBefore: new Date(Date.now() - 30 * DAY),
          notAfter: new Date(Date.now() - DAY),
        });
        return { cert: cert.certPem, key: cert.keyPem };
      },
    },
    {
      name: 'a certificate that is not valid yet',
      code: 'CERT_NOT_YET_VALID',
      server: async () => {
        const cert = await trustedCa.issueServerCertificate({
          notBefore: new Date(Date.now() + DAY),
          notAfter: new Date(Date.now() + 30 * DAY),
        });
        return { cert: cert.certPem, key: cert.keyPem };
      },
    },
    {
      name: 'a self-signed certificate',
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      server: async () => {
        const cert = await pki.createSelfSignedServerCertificate();
        return { cert: cert.certPem, key: cert.keyPem };
      },
    },
    {
      name: 'a certificate from an unknown CA',
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      server: async () => {
        const unknownCa = await pki.createCa({ commonName: 'Unknown CA' });
        const cert = await unknownCa.issueServerCertificate();
        return { cert: cert.certPem, key: cert.keyPem };
      },
    },
    {
      name: 'a certificate for another host name',
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      server: async () => {
        const cert = await trustedCa.issueServerCertificate({
          dnsNames: ['vendor.example'],
          ipAddresses: [],
        });
        return { cert: cert.certPem, key: cert.keyPem };
      },
    },
    {
      name: 'a server that only speaks TLS 1.0/1.1',
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
      server: async () => {
        const cert = await trustedCa.issueServerCertificate();
        return {
          cert: cert.certPem,
          key: cert.keyPem,
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          ciphers: 'DEFAULT@SECLEVEL=0',
        };
      },
    },
  ];

  for (const refusal of refusals) {
    it(`refuses ${refusal.name} with ${refusal.code}, sending nothing`, async () => {
      const vendor = await vendorServer(await refusal.server());
      const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem });

      const error = networkError(await post(vendor.port, dispatcher));

      expect(error).toMatchObject({ kind: 'tls_error', code: refusal.code, retryable: false });
      expect(vendor.received).toEqual([]);
      await dispatcher.close();
    });
  }

  it('keeps verifying when NODE_TLS_REJECT_UNAUTHORIZED=0 is set in the environment', async () => {
    const cert = await pki.createSelfSignedServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem });
    const dispatcher = createVendorDispatcher();
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    const emitWarning = process.emitWarning;
    process.emitWarning = () => {}; // Node warns once about the variable; the test sets it on purpose.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const error = networkError(await post(vendor.port, dispatcher));
      expect(error).toMatchObject({ kind: 'tls_error', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      expect(vendor.received).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
      process.emitWarning = emitWarning;
      await dispatcher.close();
    }
  });

  it('presents a client certificate when configured (mTLS towards a private endpoint)', async () => {
    const clientCa = await pki.createCa({ commonName: 'Client CA' });
    const clientCert = await clientCa.issueClientCertificate({ commonName: 'delivery-worker' });
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({
      cert: cert.certPem,
      key: cert.keyPem,
      ca: clientCa.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    const dispatcher = createVendorDispatcher({
      extraCaPem: trustedCa.certPem,
      clientCertificate: { certPem: clientCert.certPem, keyPem: clientCert.keyPem },
    });

    expect(await post(vendor.port, dispatcher)).toMatchObject({ type: 'response', status: 200 });
    await dispatcher.close();
  });
});

describe('strict TLS client: timeouts and connection failures', () => {
  it('classifies a refused connection', async () => {
    const probe = createNetServer();
    const port = await listenLoopback(probe);
    await closeServer(probe);
    const dispatcher = createVendorDispatcher();

    const error = networkError(await post(port, dispatcher));

    expect(error).toMatchObject({ kind: 'connect_refused', code: 'ECONNREFUSED', retryable: true });
    await dispatcher.close();
  });

  it('times out a handshake that never completes (connect phase)', async () => {
    const silent = createNetServer((socket) => {
      stalledSockets.push(socket); // accepts TCP, never answers the ClientHello
    });
    servers.push(silent);
    const port = await listenLoopback(silent);
    const dispatcher = createVendorDispatcher({ connectTimeoutMs: 200 });

    const error = networkError(await post(port, dispatcher));

    expect(error).toMatchObject({
      kind: 'timeout',
      phase: 'connect',
      code: 'UND_ERR_CONNECT_TIMEOUT',
      retryable: true,
    });
    await dispatcher.destroy();
  });

  it('times out a server that never sends response headers (headers phase)', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, () => {});
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem, headersTimeoutMs: 200 });

    const error = networkError(await post(vendor.port, dispatcher));

    expect(error).toMatchObject({ kind: 'timeout', phase: 'headers', code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(vendor.received).toHaveLength(1); // it was delivered: the vendor deduplicates on event_id
    await dispatcher.destroy();
  });

  it('times out a response body that stalls (body phase)', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
    });
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem, bodyTimeoutMs: 200 });

    const error = networkError(await post(vendor.port, dispatcher));

    expect(error).toMatchObject({ kind: 'timeout', phase: 'body', code: 'UND_ERR_BODY_TIMEOUT' });
    await dispatcher.destroy();
  });

  it('refuses a response larger than the configured limit', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, (res) => {
      res.end('x'.repeat(64 * 1024));
    });
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem, maxResponseBytes: 1024 });

    const error = networkError(await post(vendor.port, dispatcher));

    expect(error).toMatchObject({ kind: 'response_too_large', retryable: false });
    await dispatcher.destroy();
  });

  it('reports an abort (shutdown) as an aborted value', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, () => {});
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);

    const result = await request(dispatcher, {
      url: `https://127.0.0.1:${vendor.port}/`,
      method: 'GET',
      signal: controller.signal,
    });

    expect(networkError(result)).toMatchObject({ kind: 'aborted', retryable: true });
    await dispatcher.destroy();
  });

  it('ends a response trickled byte by byte at the total deadline (timeoutMs), not after the last byte', async () => {
    // One byte every 100 ms: never idle long enough for undici's body timeout, done only after 4 s.
    const cert = await trustedCa.issueServerCertificate();
    let serverSawClose = false;
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      let sent = 0;
      const timer = setInterval(() => {
        if (++sent === 40) {
          clearInterval(timer);
          res.end('{}');
        } else res.write(' ');
      }, 100);
      res.on('close', () => {
        clearInterval(timer);
        serverSawClose = true;
      });
    });
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem });
    const started = performance.now();

    const result = await request(dispatcher, {
      url: `https://127.0.0.1:${vendor.port}/v1/events`,
      body: '{}',
      timeoutMs: 700,
      headersTimeoutMs: 700,
      bodyTimeoutMs: 700,
    });
    const tookMs = performance.now() - started;

    // The same retryable timeout as an idle body timeout; the message tells the deadline apart.
    expect(networkError(result)).toEqual({
      kind: 'timeout',
      phase: 'body',
      code: 'UND_ERR_BODY_TIMEOUT',
      message: 'no complete response within the 700 ms deadline',
      retryable: true,
    });
    expect(tookMs).toBeGreaterThanOrEqual(690);
    expect(tookMs).toBeLessThan(2_000);
    // The body was destroyed with the request: the connection is gone, the vendor stops writing.
    await expect.poll(() => serverSawClose, { timeout: 2_000 }).toBe(true);
    await dispatcher.destroy();
  });

  it('applies the deadline before the headers too, when it is shorter than the idle timeouts', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, () => {});
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem, headersTimeoutMs: 5_000 });
    const started = performance.now();

    const error = networkError(
      await request(dispatcher, { url: `https://127.0.0.1:${vendor.port}/`, body: '{}', timeoutMs: 200 }),
    );

    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error).toEqual({
      kind: 'timeout',
      phase: 'headers',
      code: 'UND_ERR_HEADERS_TIMEOUT',
      message: 'no complete response within the 200 ms deadline',
      retryable: true,
    });
    await dispatcher.destroy();
  });

  it('keeps a shutdown abort an `aborted` under a deadline, and leaves nothing on the caller signal', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const stalled = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, () => {});
    const healthy = await vendorServer({ cert: cert.certPem, key: cert.keyPem });
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem });
    const shutdown = new AbortController();
    // (undici drops its own listener when the body closes, a tick after the answer: hence the poll.)

    const answered = await request(dispatcher, {
      url: `https://127.0.0.1:${healthy.port}/`,
      body: '{}',
      signal: shutdown.signal,
      timeoutMs: 60_000,
    });
    expect(answered).toMatchObject({ type: 'response', status: 200, body: '{"events_received":1}' });
    await expect.poll(() => getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);

    setTimeout(() => shutdown.abort(), 50);
    const aborted = await request(dispatcher, {
      url: `https://127.0.0.1:${stalled.port}/`,
      body: '{}',
      signal: shutdown.signal,
      timeoutMs: 60_000,
    });
    expect(networkError(aborted)).toMatchObject({ kind: 'aborted', retryable: true });
    await expect.poll(() => getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    await dispatcher.destroy();
  });

  it('returns non-2xx answers as responses with ok=false', async () => {
    const cert = await trustedCa.issueServerCertificate();
    const vendor = await vendorServer({ cert: cert.certPem, key: cert.keyPem }, (res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.end('slow down');
    });
    const dispatcher = createVendorDispatcher({ extraCaPem: trustedCa.certPem });

    const result = await post(vendor.port, dispatcher);

    expect(result).toMatchObject({ type: 'response', ok: false, status: 429, body: 'slow down' });
    expect(result.type === 'response' && result.headers['retry-after']).toBe('7');
    await dispatcher.close();
  });
});
