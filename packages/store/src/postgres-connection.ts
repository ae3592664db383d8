import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';
import { nodeCode, StoreError } from './errors';
import type { StoreLogger } from './logger';
import { pgTypes } from './type-parsers';

export interface PostgresTlsOptions {
  /**
   * PEM file with the CA certificate(s) that signed the server's certificate. Without it Node's bundled
   * public CAs are trusted. A certificate signed by anything else fails the connection (`tls_failed`).
   */
  readonly caPath?: string;
  /**
   * Name the server certificate must carry when the URL's host is an IP address (also sent as SNI). For a
   * host name the certificate is always checked against that name.
   */
  readonly servername?: string;
}

export interface PostgresDatabaseOptions {
  readonly kind: 'postgres';
  /** `DATABASE_URL`: `postgres://user:pass@host:port/db?sslmode=verify-full&sslrootcert=/path/ca.pem`. */
  readonly url: string;
  /** `DB_MAX_CONNS`: pool size. */
  readonly maxConnections: number;
  /** Presence turns TLS on (verify-full) even without `sslmode` in the URL. */
  readonly tls?: PostgresTlsOptions;
  /**
   * Schema every pooled connection uses as its `search_path`, created if missing (`SIGNAL_NAMESPACE`, test
   * isolation). Lowercase letters, digits and `_`, starting with a letter or `_`, at most 63 characters.
   */
  readonly schema?: string;
  /**
   * Time allowed to obtain a connection: waiting for a free pooled one, or opening one (TCP + TLS + auth).
   * Default 10 000 ms.
   */
  readonly connectTimeoutMs?: number;
  /** Server-side `statement_timeout`; 0 disables. Default 30 000 ms (migrations lift it per transaction). */
  readonly statementTimeoutMs?: number;
  /**
   * Client-side bound on waiting for a statement's answer (pg's `query_timeout`), which then fails with
   * `timeout` and the connection is discarded. The server's `statement_timeout` never fires for a statement
   * the server never received: on a silently dead connection (packets dropped, no FIN or RST) a call would
   * otherwise wait for as long as TCP retransmits (~15 minutes on Linux) and hold its pooled connection.
   * Must exceed `statementTimeoutMs`, so that a slow statement normally ends with the server's error on a
   * reusable connection. Default `statementTimeoutMs` + 5 000 ms; none when the statement timeout is off
   * (0) and this is not set.
   */
  readonly queryTimeoutMs?: number;
  /**
   * How long `close()` waits for connections to end (statements in flight to finish, the server to see the
   * goodbye) before it destroys their sockets. Default 5 000 ms.
   */
  readonly closeTimeoutMs?: number;
  /** Idle pooled connections are closed after this long. Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** `application_name` shown in `pg_stat_activity`. Default `signal`. */
  readonly applicationName?: string;
  readonly logger?: StoreLogger;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Added to a statement timeout to get the client-side read timeout: room for the server's own timeout error
 * to travel back, and for an event loop that was busy when the answer arrived (timers run before I/O).
 */
export const QUERY_TIMEOUT_MARGIN_MS = 5_000;

/**
 * TCP keepalive: an idle pooled connection whose peer vanished (host gone, NAT or firewall state dropped) is
 * probed after this much silence, and closed after 10 unanswered probes a second apart (libuv's interval and
 * count), instead of failing only when a statement is sent on it. It cannot catch a statement that was sent
 * and never acknowledged (TCP retransmits that for ~15 minutes): `queryTimeoutMs` bounds that.
 */
const KEEPALIVE_IDLE_MS = 10_000;

const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/** URL parameters that configure TLS; Signal interprets them itself instead of letting pg do it. */
const TLS_PARAMS = ['sslmode', 'sslrootcert', 'ssl'] as const;
/** libpq TLS parameters Signal does not support; refused rather than silently ignored. */
const UNSUPPORTED_TLS_PARAMS = [
  'sslcert',
  'sslkey',
  'sslpassword',
  'sslcrl',
  'sslnegotiation',
  'uselibpqcompat',
];

function invalid(message: string): StoreError {
  return new StoreError('invalid_config', message);
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw invalid(`${name} must be a positive integer (got ${value})`);
  return value;
}

function nonNegativeInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw invalid(`${name} must be a non-negative integer (got ${value})`);
  return value;
}

function readCa(path: string, readFile: (path: string) => string): string {
  try {
    return readFile(path);
  } catch (err) {
    throw invalid(`database CA file ${path} cannot be read (${nodeCode(err) ?? 'unknown error'})`);
  }
}

interface TlsDecision {
  readonly enabled: boolean;
  readonly caPath: string | undefined;
}

/**
 * Decides TLS from the URL and the options. Stricter than libpq on purpose: `require` and `verify-ca` are
 * treated as `verify-full` (certificate chain and host name checked), and `allow`/`prefer`, which may fall
 * back to plaintext, are refused.
 */
function decideTls(params: URLSearchParams, tls: PostgresTlsOptions | undefined): TlsDecision {
  const mode = params.get('sslmode') ?? undefined;
  const sslParam = params.get('ssl') ?? undefined;
  const rootCert = params.get('sslrootcert') ?? undefined;
  const urlCa = rootCert === undefined || rootCert === 'system' ? undefined : rootCert;
  if (tls?.caPath !== undefined && urlCa !== undefined && tls.caPath !== urlCa) {
    throw invalid(
      'database CA is set both in the URL (sslrootcert) and in the options, with different paths',
    );
  }
  const caPath = tls?.caPath ?? urlCa;
  switch (mode) {
    case 'disable':
      if (tls !== undefined || rootCert !== undefined) {
        throw invalid('DATABASE_URL has sslmode=disable but a database CA / TLS option is set; remove one');
      }
      return { enabled: false, caPath: undefined };
    case 'allow':
    case 'prefer':
      throw invalid(
        `DATABASE_URL sslmode=${mode} may fall back to plaintext; use sslmode=verify-full (with sslrootcert or a CA path) or sslmode=disable`,
      );
    case 'require':
    case 'verify-ca':
    case 'verify-full':
      return { enabled: true, caPath };
    case undefined:
      break;
    default:
      throw invalid(`DATABASE_URL sslmode must be disable, require, verify-ca or verify-full (got ${mode})`);
  }
  if (sslParam === '0' || sslParam === 'false') {
    if (tls !== undefined || rootCert !== undefined) {
      throw invalid('DATABASE_URL has ssl=false but a database CA / TLS option is set; remove one');
    }
    return { enabled: false, caPath: undefined };
  }
  const enabled = tls !== undefined || rootCert !== undefined || sslParam === '1' || sslParam === 'true';
  return { enabled, caPath };
}

/**
 * Turns the adapter options into a pg PoolConfig. Never puts the URL (it may hold a password) into an
 * error message. `readFile` is injectable for unit tests.
 */
export function resolvePoolConfig(
  options: PostgresDatabaseOptions,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): pg.PoolConfig {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw invalid('DATABASE_URL is not a valid URL (expected postgres://user:password@host:port/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw invalid(`DATABASE_URL must start with postgres:// or postgresql:// (got ${url.protocol}//)`);
  }
  for (const name of UNSUPPORTED_TLS_PARAMS) {
    if (url.searchParams.has(name)) throw invalid(`DATABASE_URL parameter ${name} is not supported`);
  }
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw invalid(
      'database schema must be lowercase letters, digits and _, start with a letter or _, at most 63 characters',
    );
  }

  const tls = decideTls(url.searchParams, options.tls);
  for (const name of TLS_PARAMS) url.searchParams.delete(name);

  // `options` from the URL would override the pool's `options` (pg lets the URL win), so merge them here.
  const startupOptions = [url.searchParams.get('options') ?? ''];
  url.searchParams.delete('options');
  if (options.schema !== undefined) startupOptions.push(`-c search_path=${options.schema}`);
  const mergedOptions = startupOptions.filter((o) => o.length > 0).join(' ');

  let ssl: ConnectionOptions | false = false;
  if (tls.enabled) {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const servername = options.tls?.servername ?? (isIP(host) === 0 && host.length > 0 ? host : undefined);
    ssl = {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(tls.caPath === undefined ? {} : { ca: readCa(tls.caPath, readFile) }),
      ...(servername === undefined ? {} : { servername }),
    };
  }

  const statementTimeoutMs = nonNegativeInt('statementTimeoutMs', options.statementTimeoutMs ?? 30_000);
  const queryTimeoutMs = resolveQueryTimeout(statementTimeoutMs, options.queryTimeoutMs);
  const config: pg.PoolConfig = {
    connectionString: url.toString(),
    ssl,
    max: positiveInt('maxConnections (DB_MAX_CONNS)', options.maxConnections),
    connectionTimeoutMillis: positiveInt('connectTimeoutMs', options.connectTimeoutMs ?? 10_000),
    idleTimeoutMillis: positiveInt('idleTimeoutMs', options.idleTimeoutMs ?? 30_000),
    statement_timeout: statementTimeoutMs,
    application_name: options.applicationName ?? 'signal',
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    types: pgTypes,
  };
  if (queryTimeoutMs !== undefined) config.query_timeout = queryTimeoutMs;
  if (mergedOptions.length > 0) config.options = mergedOptions;
  return config;
}

function resolveQueryTimeout(
  statementTimeoutMs: number,
  queryTimeoutMs: number | undefined,
): number | undefined {
  if (queryTimeoutMs === undefined) {
    return statementTimeoutMs === 0 ? undefined : statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS;
  }
  positiveInt('queryTimeoutMs', queryTimeoutMs);
  if (statementTimeoutMs !== 0 && queryTimeoutMs <= statementTimeoutMs) {
    throw invalid(
      `queryTimeoutMs (${queryTimeoutMs}) must exceed statementTimeoutMs (${statementTimeoutMs}), so the server's timeout ends a slow statement first`,
    );
  }
  return queryTimeoutMs;
}

/** `closeTimeoutMs`, validated. */
export function resolveCloseTimeout(options: PostgresDatabaseOptions): number {
  return positiveInt('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
}
