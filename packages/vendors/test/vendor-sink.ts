import { once } from 'node:events';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { createTestPki, createVendorDispatcher, type TestPki } from '@signal/http';
import { type ClosedPort, holdClosedPort } from '@signal/testkit';
import type { Dispatcher } from 'undici';

/**
 * A real HTTPS "vendor" on 127.0.0.1 with its own throw-away CA, reached through the strict-TLS vendor
 * dispatcher of `@signal/http` (the CA trusted explicitly, as production does for private endpoints). It
 * records every request and answers with whatever the test scripts.
 */

export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export type Reply =
  | { readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body?: unknown }
  /** Accept the request and never answer (timeouts). */
  | 'hang';

export type Responder = (request: RecordedRequest, index: number) => Reply;

export interface VendorSink {
  /** `https://127.0.0.1:<port>`: the endpoint override for settings. */
  readonly origin: string;
  readonly requests: RecordedRequest[];
  /** Replaces the responder (default: 200 `{}`); resets the recorded requests. */
  reply(responder: Responder): void;
  /** Parsed JSON body of request `index`. */
  json(index?: number): unknown;
}

export interface TlsHarness {
  readonly dispatcher: Dispatcher;
  startSink(): Promise<VendorSink>;
  /** A sink whose certificate is self-signed: the strict client must refuse it. */
  startUntrustedSink(): Promise<VendorSink>;
  /** A loopback port with nothing listening (connection refused), held until `close`. */
  closedPort(): Promise<number>;
  close(): Promise<void>;
}

function write(res: ServerResponse, reply: Exclude<Reply, 'hang'>): void {
  const body =
    reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  res.statusCode = reply.status;
  if (body !== '' && typeof reply.body !== 'string') res.setHeader('content-type', 'application/json');
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.end(body);
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

export async function createTlsHarness(options: { headersTimeoutMs?: number } = {}): Promise<TlsHarness> {
  const pki: TestPki = await createTestPki();
  const ca = await pki.createCa({ commonName: 'Signal Test Vendor CA' });
  const certificate = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  const dispatcher = createVendorDispatcher({
    extraCaPem: ca.certPem,
    ...(options.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: options.headersTimeoutMs }),
  });
  const servers: Server[] = [];
  const held: ClosedPort[] = [];
  const sockets = new Set<Socket>();

  const start = async (cert: { certPem: string; keyPem: string }): Promise<VendorSink> => {
    const requests: RecordedRequest[] = [];
    let responder: Responder = () => ({ status: 200, body: {} });
    const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const recorded: RecordedRequest = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        requests.push(recorded);
        const reply = responder(recorded, requests.length - 1);
        if (reply !== 'hang') write(res, reply);
      });
    });
    server.on('secureConnection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    servers.push(server);
    const port = await listen(server);
    return {
      origin: `https://127.0.0.1:${port}`,
      requests,
      reply(next) {
        responder = next;
        requests.length = 0;
      },
      json(index = 0) {
        const request = requests[index];
        if (request === undefined) throw new Error(`no request #${index} (got ${requests.length})`);
        return JSON.parse(request.body) as unknown;
      },
    };
  };

  return {
    dispatcher,
    startSink: () => start(certificate),
    startUntrustedSink: async () =>
      start(await pki.createSelfSignedServerCertificate({ ipAddresses: ['127.0.0.1'] })),
    async closedPort() {
      const closed = await holdClosedPort();
      held.push(closed);
      return closed.port;
    },
    async close() {
      await Promise.all(held.map((closed) => closed.release()));
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        servers.map(async (server) => {
          if (!server.listening) return;
          const closed = once(server, 'close');
          server.close();
          await closed;
        }),
      );
      await dispatcher.close();
      await pki.cleanup();
    },
  };
}
