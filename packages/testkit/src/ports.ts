import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';

/** A loopback port that refuses connections until `release`. */
export interface ClosedPort {
  readonly port: number;
  release(): Promise<void>;
}

/**
 * A loopback port that refuses every connection (ECONNREFUSED) for as long as it is held: the local end of a
 * connection this process keeps open, on a port below the kernel's ephemeral range. Nothing listens on it,
 * and the kernel never picks it by itself: not for a server listening on port 0, not as the source port of
 * an outgoing connection (which would let a connection to it connect to itself: an ephemeral port held this
 * way accepted 2 of 60,000 connections). A port that was merely free a moment ago, the usual alternative,
 * can be taken by a parallel test before the refusal the caller expects.
 */
export async function holdClosedPort(): Promise<ClosedPort> {
  const accepted: Socket[] = [];
  const server = createServer((socket) => accepted.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // 'close' comes once the server stops listening and its accepted connection is gone, i.e. at release.
  const closed = once(server, 'close');
  const release = async (client?: Socket): Promise<void> => {
    client?.destroy();
    for (const socket of accepted) socket.destroy();
    await closed;
  };
  try {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no loopback port');
    const client = await connectFromFixedPort(address.port);
    const port = client.localPort;
    if (port === undefined) throw new Error('the held connection has no local port');
    return { port, release: () => release(client) };
  } catch (err) {
    server.close();
    await release();
    throw err;
  } finally {
    // Stops listening; the accepted connection, and with it the client's local port, stays open.
    if (server.listening) server.close();
  }
}

/** Below the ephemeral range: Linux's from /proc, else the lowest of the usual defaults (Linux 32768, IANA 49152). */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 2048) return low;
  } catch {
    // not Linux
  }
  return 32_768;
}

async function connectFromFixedPort(serverPort: number): Promise<Socket> {
  const high = ephemeralStart() - 1;
  const low = Math.max(1024, high - 20_000);
  for (let attempt = 1; ; attempt++) {
    const localPort = low + Math.floor(Math.random() * (high - low + 1));
    const client = connect({ port: serverPort, host: '127.0.0.1', localAddress: '127.0.0.1', localPort });
    try {
      await once(client, 'connect');
      return client;
    } catch (err) {
      client.destroy();
      if (attempt >= 20 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}
