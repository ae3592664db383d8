import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { type CertificateManager, createCertificateManager } from './certificate-manager';
import { type Logger, silentLogger } from './logger';
import { sendError } from './respond';
import type { RequestHandler } from './router';
import { DEFAULT_TLS_MIN_VERSION, SERVER_CIPHERS, type TlsMinVersion } from './tls-policy';

/**
 * One way for every service to listen: plain HTTP (behind a TLS-terminating proxy, or loopback) or HTTPS
 * with Signal's TLS policy, certificate hot reload, optional mTLS, conservative timeouts and graceful close.
 */

export interface ServerTlsOptions {
  readonly certPath: string;
  readonly keyPath: string;
  /** `TLSv1.2` (default) or `TLSv1.3` for 1.3-only deployments. TLS 1.3 is negotiated whenever the client can. */
  readonly minVersion?: TlsMinVersion;
  /** CA bundle that client certificates must chain to. Required with `requestClientCert`. */
  readonly caPath?: string;
  /** mTLS: demand a client certificate signed by `caPath` and refuse the handshake without one. Default off. */
  readonly requestClientCert?: boolean;
  /** Certificate watching (see `CertificateManagerOptions`). */
  readonly reload?: {
    readonly watch?: boolean;
    readonly pollIntervalMs?: number;
    readonly debounceMs?: number;
    readonly warnBeforeDays?: number;
  };
  /** Label for logs, health and metrics. Default `server`. */
  readonly name?: string;
}

export interface ServerLimits {
  /** Time allowed to receive the request headers. Default 15 s (slowloris protection). */
  readonly headersTimeoutMs?: number;
  /** Time allowed to receive the whole request. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /**
   * Idle keep-alive time. Default 65 s: longer than the 60 s idle timeout of common load balancers, so the
   * balancer closes idle connections first and never sends a request onto one we are closing (a 502).
   */
  readonly keepAliveTimeoutMs?: number;
  /** Largest accepted request head in bytes. Default 16 KiB. */
  readonly maxHeaderSize?: number;
  /** Time allowed for the TLS handshake. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
}

export interface CreateServerOptions {
  readonly handler: RequestHandler;
  readonly tls?: ServerTlsOptions;
  readonly limits?: ServerLimits;
  readonly logger?: Logger;
}

export interface SignalHttpServer {
  /** The Node server (an `https.Server` when `tls` was given). */
  readonly server: Server;
  /** Present with TLS: the served certificate, its expiry, health and reload events. */
  readonly certificates: CertificateManager | undefined;
  /** Starts listening (and watching the certificate files). Resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /**
   * Stops intake, lets in-flight requests finish until `deadlineMs`, then drops what remains. Idle
   * keep-alive connections are closed at once.
   */
  close(deadlineMs?: number): Promise<void>;
}

const TlsOptionsSchema = z
  .object({
    certPath: z.string().min(1),
    keyPath: z.string().min(1),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
    caPath: z.string().min(1).optional(),
    requestClientCert: z.boolean().optional(),
  })
  .loose()
  .refine((tls) => tls.requestClientCert !== true || tls.caPath !== undefined, {
    message: 'requestClientCert needs caPath (the CA that signs client certificates)',
  });

const DEFAULT_LIMITS = {
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  maxHeaderSize: 16 * 1024,
  handshakeTimeoutMs: 10_000,
} as const;

/** Node options that make up the TLS policy; reapplied with every certificate reload. */
function tlsPolicy(minVersion: TlsMinVersion) {
  return {
    minVersion,
    ciphers: SERVER_CIPHERS,
    honorCipherOrder: true,
    ecdhCurve: 'X25519:P-256:P-384',
  } as const;
}

export function createServer(options: CreateServerOptions): SignalHttpServer {
  const logger = options.logger ?? silentLogger;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  // Responses in flight, so that a graceful close can ask their clients to drop keep-alive connections.
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  const handle = requestListener(options.handler, logger);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (closing) res.setHeader('connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      // The connection becomes idle once the response is done; close it now rather than at the deadline.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res);
  };

  let server: Server;
  let certificates: CertificateManager | undefined;
  let unsubscribe: (() => void) | undefined;
  // Passed as options (not set afterwards) so Node validates them, e.g. headers timeout ≤ request timeout.
  const httpOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxHeaderSize: limits.maxHeaderSize,
    // Node enforces the two timeouts above only when it sweeps connections; the default sweep (30 s)
    // would let a slow client hold a connection well past them.
    connectionsCheckingInterval: Math.min(5_000, limits.headersTimeoutMs),
  };

  if (options.tls === undefined) {
    server = createHttpServer(httpOptions, onRequest);
  } else {
    const checked = TlsOptionsSchema.safeParse(options.tls);
    if (!checked.success) {
      throw new Error(`invalid TLS server options: ${checked.error.issues.map((i) => i.message).join('; ')}`);
    }
    const tls = options.tls;
    const manager = createCertificateManager({
      certPath: tls.certPath,
      keyPath: tls.keyPath,
      ...(tls.caPath === undefined ? {} : { caPath: tls.caPath }),
      ...tls.reload,
      name: tls.name ?? 'server',
      logger,
    });
    const policy = tlsPolicy(tls.minVersion ?? DEFAULT_TLS_MIN_VERSION);
    const mtls = tls.requestClientCert === true;
    const httpsOptions: HttpsServerOptions = {
      ...httpOptions,
      ...policy,
      ...manager.secureContextMaterial(),
      // mTLS needs both flags: requestCert alone asks for a certificate but lets clients without one in.
      requestCert: mtls,
      rejectUnauthorized: mtls,
      handshakeTimeout: limits.handshakeTimeoutMs,
    };
    const httpsServer = createHttpsServer(httpsOptions, onRequest);
    unsubscribe = manager.subscribe((event) => {
      if (event.type !== 'reloaded') return;
      // New handshakes use the new context; sockets already established keep theirs.
      httpsServer.setSecureContext({ ...policy, ...manager.secureContextMaterial() });
    });
    httpsServer.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      logger.debug(
        { code: error.code ?? 'unknown', remoteAddress: socket.remoteAddress },
        'TLS handshake failed',
      );
    });
    server = httpsServer;
    certificates = manager;
  }

  return {
    server,
    certificates,
    listen(port, host) {
      return new Promise((resolveListen, rejectListen) => {
        server.once('error', rejectListen);
        server.listen(port, host, () => {
          server.off('error', rejectListen);
          const address = server.address();
          if (address === null || typeof address === 'string') {
            rejectListen(new Error('the server is not bound to a TCP address'));
            return;
          }
          certificates?.start();
          resolveListen(address);
        });
      });
    },
    close(deadlineMs = 10_000) {
      closing = true;
      certificates?.stop();
      unsubscribe?.();
      for (const res of inFlight) {
        if (!res.headersSent) res.setHeader('connection', 'close');
      }
      return new Promise((resolveClose) => {
        if (!server.listening) {
          resolveClose();
          return;
        }
        const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
        deadline.unref();
        server.close(() => {
          clearTimeout(deadline);
          resolveClose();
        });
        server.closeIdleConnections();
      });
    },
  };
}

function requestListener(handler: RequestHandler, logger: Logger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const fail = (cause: unknown): void => {
      logger.error({ err: cause, method: req.method }, 'unhandled error in request handler');
      if (res.headersSent) res.destroy();
      else sendError(res, 500, 'internal', 'internal error');
    };
    try {
      const result = handler(req, res);
      if (result instanceof Promise) result.catch(fail);
    } catch (cause) {
      fail(cause);
    }
  };
}
