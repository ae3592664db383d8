import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP relay in front of PostgreSQL that can go silent on the connections open at some moment, as a network
 * that drops their packets does: from `freeze()` on nothing is forwarded on them in either direction, FINs
 * included (the relay's sockets allow half-open connections, so it never answers a FIN by itself), and nothing
 * is reset. Connections opened later are relayed normally, so a pool can recover through fresh connections.
 */
export interface FreezableRelay {
  /** The upstream URL with the relay's host and port. */
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops forwarding anything on every connection open now. */
  freeze(): void;
  /** Destroys every relayed connection (the server then sees them end) and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  frozen: boolean;
}

export async function startFreezableRelay(upstreamUrl: string): Promise<FreezableRelay> {
  const target = new URL(upstreamUrl);
  const pairs = new Set<Pair>();
  let accepted = 0;
  const server = createServer({ allowHalfOpen: true }, (client) => {
    accepted += 1;
    const upstream = connect({
      host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(target.port || 5432),
      allowHalfOpen: true,
    });
    const pair: Pair = { client, upstream, frozen: false };
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (!pair.frozen) to.write(chunk);
      });
      from.on('end', () => {
        if (!pair.frozen) to.end();
      });
      from.on('error', () => undefined);
      from.on('close', () => {
        if (pair.frozen) return;
        to.destroy();
        pairs.delete(pair);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no TCP address');
  const url = new URL(upstreamUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    get connections() {
      return accepted;
    },
    freeze() {
      for (const pair of pairs) pair.frozen = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        pairs.clear();
        server.close(() => resolve());
      }),
  };
}
