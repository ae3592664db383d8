import { type ConsentRequirement, consentRequirementSchema } from '@signal/consent';
import { request, type VendorDispatcherRegistry } from '@signal/http';
import {
  createIntegration,
  type Integration,
  isVendorAdapterId,
  type SendRequest,
  type VendorAdapterId,
  vendors,
} from '@signal/vendors';
import type { CachedCredentialSource } from '../credentials/cached-credential-source';
import type { CredentialSource, WorkerIntegrationSource, WorkerLogger } from '../ports';

/** An integration ready to deliver: adapter bound to settings and decrypted credentials, its transport. */
export interface IntegrationRuntime {
  readonly id: string;
  readonly vendor: VendorAdapterId;
  readonly consent: ConsentRequirement;
  readonly integration: Integration;
  /** A send function (never a bare dispatcher), so the deliverer can see each request complete. */
  readonly transport: { readonly send: SendRequest };
}

/** Why an integration cannot deliver now; each is a DLQ `error` code (replayable once fixed). */
export type RuntimeProblem =
  | 'integration_not_found'
  | 'integration_disabled'
  | 'invalid_integration_config'
  | 'credentials_unreadable';

export type RuntimeLookup =
  | { readonly ok: true; readonly runtime: IntegrationRuntime }
  | {
      readonly ok: false;
      readonly problem: RuntimeProblem;
      readonly vendor: string;
      readonly details: string;
    };

export interface RuntimeDirectoryOptions {
  readonly integrations: WorkerIntegrationSource;
  /** A caching source (`cachedCredentialSource`) also forgets an integration's credentials on `invalidate`. */
  readonly credentials: CredentialSource | CachedCredentialSource;
  readonly dispatchers: VendorDispatcherRegistry;
  /**
   * How long a built runtime is reused before the integration is read again. A runtime holds the decrypted
   * credentials, so the worker passes at most the credentials TTL.
   */
  readonly refreshMs: number;
  readonly logger: WorkerLogger;
  readonly now?: () => number;
}

export interface RuntimeDirectory {
  /** Throws only for transient failures (source unavailable): the batch is then redelivered. */
  lookup(integrationId: string): Promise<RuntimeLookup>;
  /**
   * Drops a cached runtime and the integration's cached credentials (after an auth failure), so the next
   * lookup reads the integration and decrypts its credentials afresh: a token rotated by an operator applies
   * at once instead of after the credentials TTL.
   */
  invalidate(integrationId: string): void;
  /**
   * Drops the runtimes (each holds its integration's decrypted credentials) whose time has passed, and the
   * expired credentials of a caching source: an idle or deleted integration's plaintext does not stay.
   */
  sweep(): void;
  /** Drops every runtime and cached credential (shutdown). */
  clear(): void;
  /** How many runtimes (each with its decrypted credentials) are held right now. */
  readonly size: number;
}

function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return err instanceof Error ? err.name : 'unknown';
}

/**
 * Builds and caches one runtime per integration. The transport sends through the strict-TLS dispatcher of the
 * request's origin (one undici Agent per vendor origin and extra CA, from `createVendorDispatcherRegistry`),
 * so there is no way to relax verification per integration; `extraCaPem` only adds trust anchors.
 */
export function createRuntimeDirectory(options: RuntimeDirectoryOptions): RuntimeDirectory {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { lookup: RuntimeLookup; expiresAt: number }>();
  /** Bumped by `invalidate`: a build that started before it must not cache what it read. */
  const generations = new Map<string, number>();

  function transportFor(extraCaPem: string | undefined): { readonly send: SendRequest } {
    const byOrigin = new Map<string, ReturnType<VendorDispatcherRegistry['forOrigin']>>();
    return {
      send: (req) => {
        const origin = new URL(req.url).origin;
        let dispatcher = byOrigin.get(origin);
        if (dispatcher === undefined) {
          dispatcher = options.dispatchers.forOrigin(origin, extraCaPem === undefined ? {} : { extraCaPem });
          byOrigin.set(origin, dispatcher);
        }
        return request(dispatcher, req);
      },
    };
  }

  async function build(integrationId: string): Promise<RuntimeLookup> {
    const row = await options.integrations.getIntegration(integrationId);
    if (row === null) {
      return {
        ok: false,
        problem: 'integration_not_found',
        vendor: 'unknown',
        details: 'the integration no longer exists',
      };
    }
    const vendor = isVendorAdapterId(row.vendor) ? row.vendor : 'unknown';
    if (!row.enabled) {
      return { ok: false, problem: 'integration_disabled', vendor, details: 'the integration is disabled' };
    }
    const consent = consentRequirementSchema.safeParse(row.consent);
    if (vendor === 'unknown' || !consent.success) {
      return {
        ok: false,
        problem: 'invalid_integration_config',
        vendor,
        details: vendor === 'unknown' ? 'unknown vendor adapter' : 'invalid consent requirement',
      };
    }
    let credentials: unknown;
    try {
      credentials = await options.credentials.getCredentials(integrationId);
    } catch (err) {
      if (isRetryable(err)) throw err;
      logger.error(
        { integrationId, vendor, err: { code: errorCode(err) } },
        'integration credentials cannot be read',
      );
      return {
        ok: false,
        problem: 'credentials_unreadable',
        vendor,
        details: `credentials could not be decrypted (${errorCode(err)})`,
      };
    }
    try {
      const integration = createIntegration(vendors[vendor], { settings: row.settings, credentials });
      return {
        ok: true,
        runtime: {
          id: integrationId,
          vendor,
          consent: consent.data,
          integration,
          transport: transportFor(row.extraCaPem),
        },
      };
    } catch (err) {
      // VendorConfigError messages name fields, never credential values.
      const details = err instanceof Error ? err.message.slice(0, 1024) : 'invalid settings or credentials';
      logger.error(
        { integrationId, vendor, err: { code: errorCode(err) } },
        'integration configuration refused',
      );
      return { ok: false, problem: 'invalid_integration_config', vendor, details };
    }
  }

  return {
    async lookup(integrationId) {
      const hit = cache.get(integrationId);
      if (hit !== undefined && hit.expiresAt > now()) return hit.lookup;
      const generation = generations.get(integrationId) ?? 0;
      const lookup = await build(integrationId);
      if ((generations.get(integrationId) ?? 0) === generation) {
        cache.set(integrationId, { lookup, expiresAt: now() + options.refreshMs });
      }
      return lookup;
    },
    invalidate(integrationId) {
      generations.set(integrationId, (generations.get(integrationId) ?? 0) + 1);
      cache.delete(integrationId);
      if ('invalidate' in options.credentials) options.credentials.invalidate(integrationId);
    },
    get size() {
      return cache.size;
    },
    sweep() {
      const at = now();
      for (const [integrationId, entry] of cache) {
        if (entry.expiresAt <= at) cache.delete(integrationId);
      }
      if ('sweep' in options.credentials) options.credentials.sweep();
    },
    clear() {
      cache.clear();
      if ('clear' in options.credentials) options.credentials.clear();
    },
  };
}
