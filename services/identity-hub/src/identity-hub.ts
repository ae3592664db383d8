import type { Bus } from '@signal/bus';
import type { CryptoService } from '@signal/crypto';
import type { Router } from '@signal/http';
import type { Metrics } from '@signal/telemetry';
import type { IdentityHubSettings } from './config';
import { createGraphConsumer, type GraphConsumer } from './graph/graph-consumer';
import type { IdentityGraph } from './graph/identity-graph';
import { registerIdentityRoutes } from './http/identity.routes';
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
  readonly logger: IdentityHubLogger;
  readonly metrics: Metrics;
  /** The identity graph and the bus it is fed from; without it the hub serves tokens only. */
  readonly graph?: { readonly graph: IdentityGraph; readonly bus: Bus };
  readonly now?: () => number;
  /** How often `singleUse.purgeExpired` runs (default 60 s). */
  readonly purgeIntervalMs?: number;
}

export interface IdentityHub {
  /** Mounts `/v1/identity/token`, `/v1/identity/redirect` and `/v1/identity/resolve`. */
  register(router: Router): void;
  /** Starts the raw-events consumer and the used-token purge. */
  start(): Promise<void>;
  /** Stops the consumer (finishing its batch within the deadline) and the purge. Idempotent. */
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

  async function purge(): Promise<void> {
    try {
      const purged = (await singleUse.purgeExpired?.()) ?? 0;
      if (purged > 0) logger.debug({ purged }, 'expired token ids purged');
    } catch (err) {
      logger.warn({ err }, 'purging expired token ids failed; will retry');
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
        logger,
        metrics: deps.metrics,
      });
    },
    async start() {
      if (singleUse.purgeExpired !== undefined && purgeTimer === undefined) {
        purgeTimer = setInterval(() => void purge(), deps.purgeIntervalMs ?? 60_000);
        purgeTimer.unref();
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
      await consumer?.stop(deadlineMs);
    },
  };
}
