import { type Logger, silentLogger } from './logger';
import { sendError } from './respond';
import type { RouteHandler } from './router';

/** What `/metrics` needs from a registry; prom-client's `Registry` satisfies it. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** A `GET /metrics` handler over an injected registry (there is no global registry). */
export function metricsHandler(source: MetricsSource, options: { logger?: Logger } = {}): RouteHandler {
  const logger = options.logger ?? silentLogger;
  return async (_req, res) => {
    let text: string;
    try {
      text = await source.metrics();
    } catch (cause) {
      logger.error({ err: cause }, 'collecting metrics failed');
      sendError(res, 500, 'internal', 'metrics collection failed');
      return;
    }
    const body = Buffer.from(text, 'utf8');
    res.statusCode = 200;
    res.setHeader('content-type', source.contentType);
    res.setHeader('content-length', body.byteLength);
    res.setHeader('cache-control', 'no-store');
    res.end(body);
  };
}
