import { once } from 'node:events';
import type { Server } from 'node:net';
import { type ConnectionOptions, connect } from 'node:tls';

export type HandshakeResult =
  | { ok: true; protocol: string; cipher: string; fingerprint256: string }
  | { ok: false; code: string };

/**
 * One raw TLS handshake against 127.0.0.1:port with the given client options. Success means the server
 * finished the handshake (with TLS 1.3 a client-certificate refusal arrives only afterwards; use a real
 * request for mTLS).
 */
export function handshake(port: number, options: ConnectionOptions = {}): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ...options });
    socket.once('secureConnect', () => {
      const result: HandshakeResult = {
        ok: true,
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: socket.getCipher().name,
        fingerprint256: socket.getPeerCertificate().fingerprint256,
      };
      socket.destroy();
      resolve(result);
    });
    socket.once('error', (error: Error & { code?: string }) => {
      socket.destroy();
      resolve({ ok: false, code: error.code ?? error.message });
    });
  });
}

/** Listens on an ephemeral loopback port and returns it. */
export async function listenLoopback(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  if ('closeAllConnections' in server && typeof server.closeAllConnections === 'function') {
    server.closeAllConnections();
  }
  await closed;
}

/** Resolves with the first value `subscribe` delivers that matches, or rejects after `timeoutMs`. */
export function waitFor<T>(
  subscribe: (listener: (value: T) => void) => () => void,
  predicate: (value: T) => boolean,
  timeoutMs = 5_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = subscribe((value) => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}

export type ExchangeResult = { ok: true; response: string } | { ok: false; code: string };

/**
 * A TLS connection that also sends one HTTP request and reads the first answer. With TLS 1.3 a server
 * verifies a client certificate only after the client finished its handshake, so its refusal (an alert
 * such as `certificate required`) is only seen when reading.
 */
export function tlsExchange(port: number, options: ConnectionOptions = {}): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ...options });
    let settled = false;
    const settle = (result: ExchangeResult): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    socket.once('secureConnect', () => {
      socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    });
    socket.once('data', (chunk: Buffer) => settle({ ok: true, response: chunk.toString('utf8') }));
    socket.once('error', (error: Error & { code?: string }) =>
      settle({ ok: false, code: error.code ?? error.message }),
    );
    socket.once('close', () => settle({ ok: false, code: 'closed without answer' }));
  });
}
