import { once } from 'node:events';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { createServer, type Server, type ServerOptions } from 'node:https';
import type { Socket } from 'node:net';

/**
 * A real HTTPS "vendor" on 127.0.0.1 for the worker's tests: records every request that reached the
 * application (a refused TLS handshake never does) and answers as the test scripts.
 */
export interface SinkRequest {
  readonly at: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The webhook's `Idempotency-Key` (the event's messageId). */
  readonly messageId: string;
}

export type SinkReply =
  | {
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: string;
      /** Answer only after this long (a healthy but slow vendor). */
      readonly delayMs?: number;
    }
  | 'stall';

export interface HttpsSink {
  readonly url: string;
  readonly requests: SinkRequest[];
  reply(responder: (request: SinkRequest) => SinkReply): void;
  /** Requests per messageId. */
  countByMessage(): Map<string, number>;
  close(): Promise<void>;
}

export async function startHttpsSink(tls: ServerOptions): Promise<HttpsSink> {
  const requests: SinkRequest[] = [];
  let responder: (request: SinkRequest) => SinkReply = () => ({ status: 200, body: '{}' });
  const sockets = new Set<Socket>();
  const stalled = new Set<ServerResponse>();
  const server: Server = createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = req.headers['idempotency-key'];
      const request: SinkRequest = {
        at: performance.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        messageId: typeof key === 'string' ? key : '',
      };
      requests.push(request);
      const reply = responder(request);
      if (reply === 'stall') {
        stalled.add(res);
        return;
      }
      const answer = (): void => {
        res.statusCode = reply.status;
        for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
        res.end(reply.body ?? '');
      };
      if (reply.delayMs === undefined) answer();
      else setTimeout(answer, reply.delayMs);
    });
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    url: `https://127.0.0.1:${address.port}/hook`,
    requests,
    reply(next) {
      responder = next;
    },
    countByMessage() {
      const counts = new Map<string, number>();
      for (const r of requests) counts.set(r.messageId, (counts.get(r.messageId) ?? 0) + 1);
      return counts;
    },
    async close() {
      for (const res of stalled) res.destroy();
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
