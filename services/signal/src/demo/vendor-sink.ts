import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhookSignature } from '@signal/vendors';

/**
 * The embedded demo's stand-in for a vendor API: a local HTTPS server with a certificate from its own
 * freshly generated CA. Signal's delivery worker trusts that CA explicitly (the integration's extra CA), so
 * the demo exercises the same strict-TLS path as production: no verification is turned off anywhere.
 *
 * It records what arrives (counts and the last few bodies, in memory only) so the demo can show that
 * events went in, got hashed and got delivered.
 */
export interface VendorSink {
  readonly url: string;
  readonly caPem: string;
  readonly received: () => number;
  readonly recent: () => readonly SinkDelivery[];
  close(): Promise<void>;
}

export interface SinkDelivery {
  readonly path: string;
  readonly at: string;
  readonly body: unknown;
}

const RECENT = 20;

async function generatePki(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  // Loaded only in embedded mode: the certificate library installs a Reflect metadata polyfill.
  const { generate } = await import('selfsigned');
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(Date.now() + 365 * 24 * 3600 * 1000);
  const ca = await generate([{ name: 'commonName', value: 'Signal demo vendor CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { caPem: ca.cert, certPem: leaf.cert, keyPem: leaf.private };
}

export async function startVendorSink(
  options: { port?: number; webhookSecret?: string } = {},
): Promise<VendorSink> {
  const pki = await generatePki();
  let count = 0;
  const recent: SinkDelivery[] = [];
  const server: Server = createServer(
    { key: pki.keyPem, cert: pki.certPem, minVersion: 'TLSv1.2' },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        // Only the generic webhook signs its bodies; the Meta stand-in authenticates by access token.
        const isWebhook = (req.url ?? '').startsWith('/webhook');
        if (isWebhook && options.webhookSecret && !validSignature(req.headers, raw, options.webhookSecret)) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad signature"}');
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          body = null;
        }
        count += Array.isArray((body as { data?: unknown[] } | null)?.data)
          ? ((body as { data: unknown[] }).data.length ?? 1)
          : 1;
        recent.unshift({ path: req.url ?? '/', at: new Date().toISOString(), body });
        recent.length = Math.min(recent.length, RECENT);
        // Answer like a vendor that accepted the events.
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"events_received":1}');
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    caPem: pki.caPem,
    received: () => count,
    recent: () => recent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function validSignature(headers: IncomingHttpHeaders, body: Buffer, secret: string): boolean {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  return verifyWebhookSignature({
    secrets: secret,
    signature: header(SIGNATURE_HEADER),
    timestamp: header(TIMESTAMP_HEADER),
    body,
  }).ok;
}
