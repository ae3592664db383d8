import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type ComponentHealth, evaluateReadiness, registerHealthRoutes } from './health';
import { metricsHandler } from './metrics-route';
import { createRouter } from './router';
import { createServer, type SignalHttpServer } from './server';

const started: SignalHttpServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close(100)));
});

async function serve(build: (router: ReturnType<typeof createRouter>) => void): Promise<string> {
  const router = createRouter();
  build(router);
  const server = createServer({ handler: (req, res) => router.handle(req, res) });
  started.push(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${port}`;
}

describe('readiness', () => {
  it('is the worst component status; a throwing or hanging check fails', async () => {
    const never = () => new Promise<ComponentHealth>(() => {});
    const report = await evaluateReadiness(
      {
        db: () => ({ status: 'ok' }),
        tls: () => ({ status: 'warn', details: { days_until_expiry: 9 } }),
        kms: async () => {
          throw new Error('kms down');
        },
        bus: never,
      },
      { timeoutMs: 50 },
    );
    expect(report).toEqual({
      status: 'fail',
      checks: {
        db: { status: 'ok' },
        tls: { status: 'warn', details: { days_until_expiry: 9 } },
        kms: { status: 'fail', details: { error: 'check_failed' } },
        bus: { status: 'fail', details: { error: 'timeout' } },
      },
    });
    expect((await evaluateReadiness({ a: () => ({ status: 'ok' }) })).status).toBe('ok');
    expect((await evaluateReadiness({})).status).toBe('ok');
  });

  it('serves /health/live and /health/ready (200 while ok or warn, 503 on fail)', async () => {
    let tls: ComponentHealth = { status: 'warn', details: { days_until_expiry: 9 } };
    const base = await serve((router) =>
      registerHealthRoutes(router, { checks: { tls: () => tls, db: () => ({ status: 'ok' }) } }),
    );

    const live = await fetch(`${base}/health/live`);
    expect([live.status, await live.json()]).toEqual([200, { status: 'ok' }]);

    const warn = await fetch(`${base}/health/ready`);
    expect(warn.status).toBe(200);
    expect(warn.headers.get('cache-control')).toBe('no-store');
    expect(await warn.json()).toEqual({
      status: 'warn',
      checks: { tls: { status: 'warn', days_until_expiry: 9 }, db: { status: 'ok' } },
    });

    tls = { status: 'fail' };
    const failing = await fetch(`${base}/health/ready`);
    expect(failing.status).toBe(503);
    expect(await failing.json()).toMatchObject({ status: 'fail', checks: { tls: { status: 'fail' } } });
  });
});

describe('/metrics', () => {
  it('exposes an injected prom-client registry in its own content type', async () => {
    const registry = new Registry();
    new Counter({
      name: 'signal_events_received_total',
      help: 'events',
      labelNames: ['endpoint'],
      registers: [registry],
    }).inc({ endpoint: '/v1/t' }, 3);
    const base = await serve((router) => router.on('GET', '/metrics', metricsHandler(registry)));

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(registry.contentType);
    expect(await response.text()).toContain('signal_events_received_total{endpoint="/v1/t"} 3');
  });

  it('answers 500 when collection fails', async () => {
    const broken = {
      contentType: 'text/plain',
      metrics: () => Promise.reject(new Error('collector crashed')),
    };
    const base = await serve((router) => router.on('GET', '/metrics', metricsHandler(broken)));
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      error: { code: 'internal', message: 'metrics collection failed' },
    });
  });

  describe('with METRICS_TOKEN', () => {
    const token = 'metrics-token-0123456789-abcdefghijkl';
    const registry = new Registry();
    new Counter({ name: 'signal_dlq_depth_probe', help: 'probe', registers: [registry] }).inc();
    const scrape = async (authorization?: string) => {
      const base = await serve((router) => router.on('GET', '/metrics', metricsHandler(registry, { token })));
      return fetch(`${base}/metrics`, authorization === undefined ? {} : { headers: { authorization } });
    };

    it('answers a scrape with the bearer token', async () => {
      const response = await scrape(`Bearer ${token}`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('signal_dlq_depth_probe 1');
      expect((await scrape(`bearer  ${token}`)).status).toBe(200); // the scheme is case-insensitive
    });

    it.each([
      ['no Authorization header', undefined],
      ['another token', `Bearer ${token.slice(1)}x`],
      ['a prefix of the token', `Bearer ${token.slice(0, 10)}`],
      ['the token with a suffix', `Bearer ${token}x`],
      ['another scheme', `Basic ${Buffer.from(`prometheus:${token}`).toString('base64')}`],
      ['the bare token', token],
      ['an empty bearer', 'Bearer '],
    ])('refuses %s with 401 and no metrics', async (_name, authorization) => {
      const response = await scrape(authorization);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({
        error: { code: 'unauthorized', message: 'metrics need Authorization: Bearer <METRICS_TOKEN>' },
      });
      expect(text).not.toContain(token.slice(0, 10));
      expect(text).not.toContain('signal_');
    });
  });
});
