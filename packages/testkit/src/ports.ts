import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

/** A loopback port that refuses connections until `release`. */
export interface ClosedPort {
  readonly port: number;
  release(): Promise<void>;
}

/**
 * A loopback port that refuses every connection (ECONNREFUSED) for as long as it is held: the local end of a
 * connection this process keeps open. Nothing listens on it, and no other socket can bind it while it is in
 * use, unlike a port that was merely free a moment ago, which a parallel test may take before the refusal
 * that the caller expects.
 */
export async function holdClosedPort(): Promise<ClosedPort> {
  const accepted: Socket[] = [];
  const server = createServer((socket) => accepted.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no loopback port');
  const client = connect(address.port, '127.0.0.1');
  await once(client, 'connect');
  // Stops listening; the accepted connection, and with it the client's local port, stays open.
  server.close();
  const port = client.localPort;
  if (port === undefined) throw new Error('the held connection has no local port');
  return {
    port,
    async release() {
      client.destroy();
      for (const socket of accepted) socket.destroy();
      if (server.listening) await once(server, 'close');
    },
  };
}
