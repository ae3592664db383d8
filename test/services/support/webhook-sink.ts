import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhookSignature } from '@signal/vendors';

export interface SinkRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Whether the body carried a valid signature under the integration's signing secret. */
  readonly signatureValid: boolean;
  readonly at: number;
}

/**
 * A customer's private HTTPS endpoint: its certificate comes from a CA of its own, which the delivery worker
 * trusts only because the integration's `extraCaPem` says so (strict TLS, nothing turned off).
 */
export interface WebhookSink {
  readonly url: string;
  readonly caPem: string;
  /** A CA for other test servers (e.g. a service's TLS_CERT_PATH). */
  readonly ca: TestCa;
  readonly requests: SinkRequest[];
  close(): Promise<void>;
}

export async function startWebhookSink(signingSecret: string): Promise<WebhookSink> {
  const pki: TestPki = await createTestPki();
  const ca = await pki.createCa({ commonName: 'Signal services test CA' });
  const leaf = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const requests: SinkRequest[] = [];
  const server: Server = createServer(
    { cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1.2' },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const header = (name: string) => {
          const value = req.headers[name];
          return Array.isArray(value) ? value[0] : value;
        };
        const verdict = verifyWebhookSignature({
          secrets: signingSecret,
          signature: header(SIGNATURE_HEADER),
          timestamp: header(TIMESTAMP_HEADER),
          body,
        });
        requests.push({
          path: req.url ?? '/',
          headers: req.headers,
          body: body.toString('utf8'),
          signatureValid: verdict.ok,
          at: performance.now(),
        });
        res.writeHead(verdict.ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(verdict.ok ? '{"ok":true}' : '{"error":"bad signature"}');
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    caPem: ca.certPem,
    ca,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pki.cleanup();
    },
  };
}
