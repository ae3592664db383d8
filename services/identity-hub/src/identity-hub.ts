import type { Bus } from '@signal/bus';
import { type Cache, createMemoryCache } from '@signal/cache';
import type { CryptoService } from '@signal/crypto';
import type { Router } from '@signal/http';
import type { Metrics } from '@signal/telemetry';
import type { IdentityHubSettings } from './config';
import type { ConsentOfRecord } from './graph/consent-of-record';
import { createGraphConsumer, type GraphConsumer } from './graph/graph-consumer';
import type { IdentityGraph } from './graph/identity-graph';
import type { VisitorConsentStore } from './graph/visitor-consent';
import { registerIdentityRoutes } from './http/identity.routes';
import { createIdentityRateLimits } from './http/rate-limits';
import type { IdentityHubLogger, LinkedDomainSource, PipelineResolver } from './ports';
import type { SingleUseStore } from './tokens/single-use';
import { createTokenService, type TokenService } from './tokens/token-service';

export interface IdentityHubDeps {
  readonly settings: IdentityHubSettings;
  /** Seals and opens tokens; built with the crypto audit sink so failed opens record `crypto.decrypt_failed`. */
  readonly crypto: Pick<CryptoService, 'sealText' | 'openText'>;
  /** Redis (`cacheSingleUseStore`) when there is a shared cache, else SQL (`sqlSingleUseStore`). */
  readonly singleUse: SingleUseStore;
  readonly pipelines: PipelineResolver;
  readonly linkedDomains: LinkedDomainSource;
  /**
   * Where the rate-limit counters live: the shared cache (Redis) when the hub runs as several replicas, so
   * the limits hold across them. Default: a private in-process store, exact for one process (the
   * all-in-one), and its counters then never take room from the cache the single-use ids, the gateway's
   * replay markers and the processor's dedup share.
   */
  readonly rateLimitCache?: Pick<Cache, 'incrementWindow'>;
  readonly logger: IdentityHubLogger;
  readonly metrics: Metrics;
  /** The identity graph and the bus it is fed from; without it the hub serves tokens only. */
  readonly graph?: { readonly graph: IdentityGraph; readonly bus: Bus };
  readonly now?: () => number;
  /** How often `singleUse.purgeExpired` runs (default 60 s). */
  readonly purgeIntervalMs?: number;
  /**
   * Consents of record (`createConsentOfRecord`): their expired rows are purged with the erasure records.
   */
  readonly consentOfRecord?: Pick<ConsentOfRecord, 'purgeExpired'>;
  /** Visitors' consent states in the database (`createVisitorConsentStore`): purged with them. */
  readonly visitorConsent?: Pick<VisitorConsentStore, 'purgeExpired'>;
  /**
   * How often expired erasure records, consents of record and visitor consent states are purged (default
   * 1 h; also once at start).
   */
  readonly erasurePurgeIntervalMs?: number;
}

export interface IdentityHub {
  /** Mounts `/v1/identity/token`, `/v1/identity/redirect` and `/v1/identity/resolve`. */
  register(router: Router): void;
  /** Starts the raw-events consumer, the used-token purge and the erasure-record purge. */
  start(): Promise<void>;
  /** Stops the consumer (finishing its batch within the deadline) and the purges. Idempotent. */
  stop(deadlineMs?: number): Promise<void>;
  readonly tokens: TokenService;
}

/**
 * The Identity Hub as a component: HTTP routes for any router (its own server in `main`, or the all-in-one's
 * single port), plus its background work.
 */
export function createIdentityHub(deps: IdentityHubDeps): IdentityHub {
  const { settings, singleUse, logger } = deps;
  const tokens = createTokenService({
    crypto: deps.crypto,
    singleUse,
    ttlSeconds: settings.tokenTtlSeconds,
    clockSkewSeconds: settings.clockSkewSeconds,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const consumer: GraphConsumer | undefined =
    deps.graph === undefined
      ? undefined
      : createGraphConsumer({
          bus: deps.graph.bus,
          namespace: settings.namespace,
          graph: deps.graph.graph,
          logger,
          metrics: deps.metrics,
        });
  let purgeTimer: ReturnType<typeof setInterval> | undefined;
  let erasurePurgeTimer: ReturnType<typeof setInterval> | undefined;
  // Created on first use (and again after stop), closed by stop; never when the caller gives a cache.
  let ownCounters: Cache | undefined;
  const counters: Pick<Cache, 'incrementWindow'> = deps.rateLimitCache ?? {
    incrementWindow: (key, windowMs) => {
      ownCounters ??= createMemoryCache();
      return ownCounters.incrementWindow(key, windowMs);
    },
  };
  const rateLimits = createIdentityRateLimits({ counters, settings, logger, metrics: deps.metrics });

  async function purge(): Promise<void> {
    try {
      const purged = (await singleUse.purgeExpired?.()) ?? 0;
      if (purged > 0) logger.debug({ purged }, 'expired token ids purged');
    } catch (err) {
      logger.warn({ err }, 'purging expired token ids failed; will retry');
    }
  }

  async function purgeRecords(graph: IdentityGraph | undefined): Promise<void> {
    try {
      const purged = (await graph?.purgeErasureRecords()) ?? 0;
      if (purged > 0) logger.info({ purged }, 'expired identity erasure records purged');
    } catch (err) {
      logger.warn({ err }, 'purging expired identity erasure records failed; will retry');
    }
    try {
      const purged = (await deps.consentOfRecord?.purgeExpired()) ?? 0;
      if (purged > 0) logger.info({ purged }, 'expired consents of record purged');
    } catch (err) {
      logger.warn({ err }, 'purging expired consents of record failed; will retry');
    }
    try {
      const purged = (await deps.visitorConsent?.purgeExpired()) ?? 0;
      if (purged > 0) logger.info({ purged }, 'expired visitor consent states purged');
    } catch (err) {
      logger.warn({ err }, 'purging expired visitor consent states failed; will retry');
    }
  }

  return {
    tokens,
    register(router) {
      registerIdentityRoutes(router, {
        settings,
        tokens,
        pipelines: deps.pipelines,
        linkedDomains: deps.linkedDomains,
        rateLimits,
        logger,
        metrics: deps.metrics,
      });
    },
    async start() {
      if (singleUse.purgeExpired !== undefined && purgeTimer === undefined) {
        purgeTimer = setInterval(() => void purge(), deps.purgeIntervalMs ?? 60_000);
        purgeTimer.unref();
      }
      const graph = deps.graph?.graph;
      const purges =
        graph !== undefined || deps.consentOfRecord !== undefined || deps.visitorConsent !== undefined;
      if (purges && erasurePurgeTimer === undefined) {
        void purgeRecords(graph);
        erasurePurgeTimer = setInterval(
          () => void purgeRecords(graph),
          deps.erasurePurgeIntervalMs ?? 3_600_000,
        );
        erasurePurgeTimer.unref();
      }
      await consumer?.start();
      logger.info(
        { graph: consumer !== undefined, tokenTtlSeconds: settings.tokenTtlSeconds },
        'identity hub started',
      );
    },
    async stop(deadlineMs = 10_000) {
      clearInterval(purgeTimer);
      purgeTimer = undefined;
      clearInterval(erasurePurgeTimer);
      erasurePurgeTimer = undefined;
      await consumer?.stop(deadlineMs);
      await ownCounters?.close();
      ownCounters = undefined;
    },
  };
}
