import type { SignalConfig } from '@signal/config';
import { cryptoHealthHandler, loggingAuditSink } from '@signal/crypto';
import { createRouter, createServer, metricsHandler, registerHealthRoutes } from '@signal/http';
import { bootstrapCrypto, Lifecycle } from '@signal/runtime';
import { createMetrics, type Logger } from '@signal/telemetry';

export interface SignalDeps {
  readonly config: SignalConfig;
  readonly logger: Logger;
}

/**
 * The composition root of the embedded all-in-one (STYLE §2): adapters first, then services, then the one
 * HTTP transport, each registered with the lifecycle so they stop in reverse order.
 */
export async function buildSignal({ config, logger }: SignalDeps) {
  const metrics = createMetrics();
  const lifecycle = new Lifecycle(logger);

  const cryptoRuntime = bootstrapCrypto({
    config,
    logger: logger.child({ component: 'crypto' }),
    metrics,
    audit: loggingAuditSink(logger.child({ component: 'audit' })),
    allowDevelopmentKey: true,
  });

  const router = createRouter({ logger });
  const cryptoHealth = cryptoHealthHandler(cryptoRuntime.health);
  router.on('GET', '/health/crypto', (req, res) => cryptoHealth(req, res));
  registerHealthRoutes(router, {
    checks: {
      crypto: () => ({ status: cryptoRuntime.health().status === 'healthy' ? 'ok' : 'fail' }),
    },
  });
  router.on('GET', '/metrics', metricsHandler(metrics));

  const server = createServer({
    handler: (req, res) => router.handle(req, res),
    logger: logger.child({ component: 'http' }),
    ...(config.tls
      ? {
          tls: {
            certPath: config.tls.certPath,
            keyPath: config.tls.keyPath,
            minVersion: config.tls.minVersion === '1.3' ? ('TLSv1.3' as const) : ('TLSv1.2' as const),
          },
        }
      : {}),
  });
  let port = config.port;
  lifecycle.add({
    name: 'http',
    async start() {
      port = (await server.listen(config.port)).port;
    },
    stop: (deadlineMs) => server.close(deadlineMs),
  });

  return {
    lifecycle,
    port: () => port,
    announce() {
      const base = `${config.tls ? 'https' : 'http'}://localhost:${port}`;
      logger.info({ url: base }, 'signal is running');
      process.stdout.write(
        [
          '',
          `  Signal is running on ${base}`,
          `    crypto health   ${base}/health/crypto`,
          `    readiness       ${base}/health/ready`,
          `    metrics         ${base}/metrics`,
          cryptoRuntime.developmentKeyPath
            ? `  WARNING: development encryption key in ${cryptoRuntime.developmentKeyPath}; set ENCRYPTION_KEY in production`
            : '',
          '',
        ].join('\n'),
      );
    },
  };
}
