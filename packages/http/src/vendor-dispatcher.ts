import { createHash, X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { z } from 'zod';
import { type DestinationGuard, destinationGuard, refusedLiteral } from './destination-guard';

/**
 * Strict-TLS undici Agents for calls to vendors (ARCHITECTURE §6). TLS 1.2 is the floor, the certificate
 * chain and host name are always verified, and nothing here can turn that off: the options type has no
 * `rejectUnauthorized`, no custom `connect` function and no `checkServerIdentity`, and the runtime schema
 * refuses unknown keys, so even an untyped caller cannot slip one in. Verification is set explicitly, which
 * also makes it immune to `NODE_TLS_REJECT_UNAUTHORIZED=0` in the environment.
 */

export interface ClientCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface VendorDispatcherOptions {
  /**
   * PEM CA certificate(s) trusted in addition to Node's bundled Mozilla roots, for a vendor or private
   * endpoint with its own CA. (Passing a CA list replaces the defaults, so the roots are added back here;
   * certificates from NODE_EXTRA_CA_CERTS are not included for such a dispatcher.)
   */
  readonly extraCaPem?: string;
  /** TCP connect plus TLS handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Waiting for the response headers. Default 30 s (undici's default is 300 s). */
  readonly headersTimeoutMs?: number;
  /** Longest pause between body chunks. Default 30 s. */
  readonly bodyTimeoutMs?: number;
  /** Idle keep-alive before the client closes a pooled connection. Default 4 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Upper bound for a server-suggested keep-alive (`Keep-Alive: timeout=`). Default 60 s. */
  readonly keepAliveMaxTimeoutMs?: number;
  /** Concurrent connections per origin. Default 16. */
  readonly connections?: number;
  /** Responses larger than this fail with `response_too_large`. Default 1 MiB. */
  readonly maxResponseBytes?: number;
  /** Present a client certificate (mTLS to private endpoints). Kept in memory only. */
  readonly clientCertificate?: ClientCertificate;
  /**
   * Refuse connections to private and special-purpose addresses (destination-guard.ts), except `allow`
   * (IPs or CIDR ranges): for destinations that tenants configure (the delivery worker). Absent: any address.
   */
  readonly privateDestinations?: { readonly allow: readonly string[] };
}

export const DEFAULT_VENDOR_DISPATCHER_OPTIONS = Object.freeze({
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 4_000,
  keepAliveMaxTimeoutMs: 60_000,
  connections: 16,
  maxResponseBytes: 1024 * 1024,
});

export class VendorTlsConfigError extends Error {
  override readonly name = 'VendorTlsConfigError';
  readonly code = 'invalid_vendor_tls_config';
}

const positiveMs = z.number().int().positive().max(600_000);
const OptionsSchema = z.strictObject({
  extraCaPem: z.string().min(1).optional(),
  connectTimeoutMs: positiveMs.optional(),
  headersTimeoutMs: positiveMs.optional(),
  bodyTimeoutMs: positiveMs.optional(),
  keepAliveTimeoutMs: positiveMs.optional(),
  keepAliveMaxTimeoutMs: positiveMs.optional(),
  connections: z.number().int().positive().max(1024).optional(),
  maxResponseBytes: z.number().int().positive().optional(),
  clientCertificate: z.strictObject({ certPem: z.string().min(1), keyPem: z.string().min(1) }).optional(),
  privateDestinations: z.strictObject({ allow: z.array(z.string()) }).optional(),
});

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

interface ExtraCa {
  readonly pems: readonly string[];
  /** SHA-256 over the DER of every certificate: the same CA in different PEM layouts has one fingerprint. */
  readonly fingerprint: string;
}

function parseExtraCa(pem: string): ExtraCa {
  const pems = pem.match(PEM_CERTIFICATE) ?? [];
  if (pems.length === 0) throw new VendorTlsConfigError('extraCaPem holds no PEM certificate');
  const hash = createHash('sha256');
  for (const block of pems) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block);
    } catch (cause) {
      throw new VendorTlsConfigError('extraCaPem holds a certificate that cannot be parsed', { cause });
    }
    if (!certificate.ca) throw new VendorTlsConfigError('extraCaPem holds a certificate that is not a CA');
    hash.update(certificate.raw);
  }
  return { pems, fingerprint: hash.digest('hex') };
}

function validate(options: VendorDispatcherOptions): void {
  const checked = OptionsSchema.safeParse(options);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`);
    throw new VendorTlsConfigError(`invalid vendor dispatcher options: ${problems.join('; ')}`);
  }
}

/** Builds one Agent. Prefer `createVendorDispatcherRegistry` so each vendor origin gets its own pool. */
export function createVendorDispatcher(options: VendorDispatcherOptions = {}): Agent {
  validate(options);
  const extraCa = options.extraCaPem === undefined ? undefined : parseExtraCa(options.extraCaPem);
  return buildAgent(options, extraCa, guardOf(options));
}

function guardOf(
  options: Pick<VendorDispatcherOptions, 'privateDestinations'>,
): DestinationGuard | undefined {
  if (options.privateDestinations === undefined) return undefined;
  try {
    return destinationGuard(options.privateDestinations.allow);
  } catch (cause) {
    throw new VendorTlsConfigError(cause instanceof Error ? cause.message : 'invalid allowlist', { cause });
  }
}

function buildAgent(
  options: Omit<VendorDispatcherOptions, 'extraCaPem'>,
  extraCa: ExtraCa | undefined,
  guard: DestinationGuard | undefined,
): Agent {
  const settings = { ...DEFAULT_VENDOR_DISPATCHER_OPTIONS, ...options };
  const tls = {
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
    ...(extraCa === undefined ? {} : { ca: [...rootCertificates, ...extraCa.pems] }),
    ...(options.clientCertificate === undefined
      ? {}
      : { cert: options.clientCertificate.certPem, key: options.clientCertificate.keyPem }),
  } as const;
  return new Agent({
    connect: guard === undefined ? tls : guardedConnector(tls, guard, settings.connectTimeoutMs),
    connectTimeout: settings.connectTimeoutMs,
    headersTimeout: settings.headersTimeoutMs,
    bodyTimeout: settings.bodyTimeoutMs,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    keepAliveMaxTimeout: settings.keepAliveMaxTimeoutMs,
    connections: settings.connections,
    maxResponseSize: settings.maxResponseBytes,
  });
}

/**
 * undici's connector with the guard in front: a literal IP host is checked here (`net.connect` does not look
 * it up), a host name by the guard's `lookup` on every connection, after resolution.
 */
function guardedConnector(
  tls: Record<string, unknown>,
  guard: DestinationGuard,
  timeout: number,
): buildConnector.connector {
  const connect = buildConnector({ ...tls, lookup: guard.lookup, timeout } as buildConnector.BuildOptions);
  return (options, callback) => {
    const refused = refusedLiteral(guard, options.hostname);
    if (refused !== undefined) {
      callback(refused, null);
      return;
    }
    connect(options, callback);
  };
}

export interface VendorDispatcherRegistry {
  /**
   * The dispatcher for an origin (`https://graph.facebook.com`) and optional extra CA. The same origin and CA
   * always get the same Agent; a different CA for the same origin gets its own. Only https origins.
   */
  forOrigin(url: string | URL, options?: { readonly extraCaPem?: string }): Dispatcher;
  readonly size: number;
  /** Closes every Agent, letting in-flight requests finish. */
  close(): Promise<void>;
}

export function createVendorDispatcherRegistry(
  defaults: Omit<VendorDispatcherOptions, 'extraCaPem'> = {},
): VendorDispatcherRegistry {
  validate(defaults);
  const guard = guardOf(defaults);
  const agents = new Map<string, Agent>();
  return {
    forOrigin(url, options = {}) {
      let origin: URL;
      try {
        origin = new URL(url);
      } catch (cause) {
        throw new VendorTlsConfigError('the vendor URL is not a valid URL', { cause });
      }
      if (origin.protocol !== 'https:') throw new VendorTlsConfigError('vendor URLs must use https');
      const extraCa = options.extraCaPem === undefined ? undefined : parseExtraCa(options.extraCaPem);
      const key = `${origin.origin}#${extraCa?.fingerprint ?? 'system-roots'}`;
      let agent = agents.get(key);
      if (agent === undefined) {
        agent = buildAgent(defaults, extraCa, guard);
        agents.set(key, agent);
      }
      return agent;
    },
    get size() {
      return agents.size;
    },
    async close() {
      const closing = [...agents.values()].map((agent) => agent.close());
      agents.clear();
      await Promise.all(closing);
    },
  };
}
