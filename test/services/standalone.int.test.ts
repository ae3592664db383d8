/**
 * Production deployment, one process per service (ARCHITECTURE §2): each service starts on its own against
 * real PostgreSQL and Redis with the PostgreSQL bus, reports ready and crypto-healthy, and stops cleanly on
 * SIGTERM; without what it needs (database, key, migrated schema) it refuses to start and says what to do.
 */
import { randomBytes } from 'node:crypto';
import { postgresAvailable, redisAvailable } from '@signal/testkit';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDeployment, type TestDeployment } from './support/deployment';
import { type SeededPipeline, seedPipeline } from './support/seed';
import {
  runExpectingRefusal,
  SERVICES,
  type ServiceProcess,
  startService,
  waitUntilReady,
} from './support/service-process';

const available = (await postgresAvailable()) && (await redisAvailable());
/** Each test starts several service processes; on a loaded 2-core machine that takes a while. */
const PROCESS_TEST_TIMEOUT_MS = 90_000;

/** The four data-plane services this suite covers for refusals (the Management API has its own tests). */
const DATA_PLANE = ['ingestion-gateway', 'event-processor', 'delivery-worker', 'identity-hub'] as const;

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await request(url, { headersTimeout: 5_000 });
  return { status: res.statusCode, body: await res.body.json() };
}

describe.skipIf(!available)('each service runs as its own process (PostgreSQL, Redis, postgres bus)', () => {
  let deployment: TestDeployment;
  let unmigrated: TestDeployment;
  let seeded: SeededPipeline;

  beforeAll(async () => {
    [deployment, unmigrated] = await Promise.all([
      createTestDeployment({ migrate: true }),
      createTestDeployment({ migrate: false }),
    ]);
    seeded = await seedPipeline(deployment);
  });
  afterAll(async () => {
    await Promise.all([deployment?.cleanup(), unmigrated?.cleanup()]);
  });

  it(
    'all five answer /health/ready and /health/crypto, then exit 0 on SIGTERM',
    async () => {
      const jwtSecret = randomBytes(32).toString('hex');
      const services: ServiceProcess[] = [];
      try {
        for (const name of SERVICES) {
          const extra: Record<string, string> = { PORT: '0' };
          if (name === 'management-api') extra.JWT_SECRET = jwtSecret;
          services.push(startService(name, deployment.env(extra)));
        }
        await Promise.all(services.map((s) => waitUntilReady(s)));

        for (const service of services) {
          const ready = await getJson(`${service.baseUrl}/health/ready`);
          expect(ready.status, service.name).toBe(200);
          expect(ready.body, service.name).toMatchObject({
            status: 'ok',
            checks: { database: { status: 'ok' }, cache: { status: 'ok' }, crypto: { status: 'ok' } },
          });
          const crypto = await getJson(`${service.baseUrl}/health/crypto`);
          expect(crypto.status, service.name).toBe(200);
          // The Management API adds how many records each key holds; the contract body is the same everywhere.
          const { records_by_key_id: perKey, ...contract } = crypto.body as Record<string, unknown>;
          if (service.name === 'management-api') expect(perKey).toMatchObject({ plaintext: 0, other: 0 });
          else expect(perKey, service.name).toBeUndefined();
          expect(contract, service.name).toEqual({
            status: 'healthy',
            provider: 'local',
            key_version: 1,
            dual_key_mode: false,
            checks: { key_valid: true, round_trip: true },
          });
          const live = await request(`${service.baseUrl}/health/live`);
          expect(live.statusCode, service.name).toBe(200);
          await live.body.dump();
          const metrics = await request(`${service.baseUrl}/metrics`);
          expect(metrics.statusCode, service.name).toBe(200);
          expect(await metrics.body.text(), service.name).toContain('signal_crypto_operations_total');
        }

        // The standalone hub reads pipelines and linked domains through the control plane, seals with the
        // deployment's key and consumes token ids in Redis: a cross-domain token opens once.
        const hub = services[SERVICES.indexOf('identity-hub')];
        if (!hub) throw new Error('identity hub not started');
        const anonymousId = `anon_${randomBytes(12).toString('hex')}`;
        const issued = await request(`${hub.baseUrl}/v1/identity/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-pipeline-key': seeded.pipelineKey,
            cookie: `_dfid=${anonymousId}`,
            host: 'site-a.localhost',
            // Tokens go only to pages of a linked origin (a credentialed fetch always carries Origin).
            origin: 'https://site-a.localhost',
          },
          body: JSON.stringify({ to: 'https://site-b.localhost/landing' }),
        });
        const issuedBody = (await issued.body.json()) as { token?: string; url?: string };
        expect(issued.statusCode, JSON.stringify(issuedBody)).toBe(200);
        const resolve = () =>
          request(`${hub.baseUrl}/v1/identity/resolve`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', host: 'site-b.localhost' },
            body: JSON.stringify({ token: issuedBody.token }),
          });
        const first = await resolve();
        expect(first.statusCode).toBe(200);
        expect(await first.body.json()).toEqual({ anonymousId });
        const replay = await resolve();
        expect(replay.statusCode).toBe(400);
        await replay.body.dump();

        const exits = await Promise.all(services.map((s) => s.stop()));
        for (const [index, exit] of exits.entries()) {
          const name = SERVICES[index];
          expect({ name, code: exit.code, signal: exit.signal }).toEqual({ name, code: 0, signal: null });
          // exitOnSignals' graceful deadline is 25 s; an idle service stops in well under it.
          expect(exit.ms, `${name} took ${exit.ms} ms to stop`).toBeLessThan(25_000);
        }
      } finally {
        for (const service of services) service.kill();
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'refuses to start without DATABASE_URL, naming it',
    async () => {
      const results = await Promise.all(
        DATA_PLANE.map(async (name) => {
          const env = deployment.env({ PORT: '0' });
          delete env.DATABASE_URL;
          return { name, ...(await runExpectingRefusal(name, env)) };
        }),
      );
      for (const { name, code, output } of results) {
        expect(code, `${name}:\n${output}`).toBe(1);
        expect(output, output).toContain(`${name}: refusing to start: DATABASE_URL must be set`);
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'refuses to start without ENCRYPTION_KEY (no development key), naming it',
    async () => {
      const results = await Promise.all(
        DATA_PLANE.map(async (name) => {
          const env = deployment.env({ PORT: '0' });
          delete env.ENCRYPTION_KEY;
          return { name, ...(await runExpectingRefusal(name, env)) };
        }),
      );
      for (const { name, code, output } of results) {
        expect(code, `${name}:\n${output}`).toBe(1);
        expect(output, output).toContain(`${name}: refusing to start: ENCRYPTION_KEY is not set`);
        expect(output, name).not.toContain('DEVELOPMENT key');
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'refuses to start on an unmigrated database, naming `signal-cli migrate` (the Management API too)',
    async () => {
      const jwtSecret = randomBytes(32).toString('hex');
      const results = await Promise.all(
        [...DATA_PLANE, 'management-api' as const].map(async (name) => ({
          name,
          ...(await runExpectingRefusal(
            name,
            unmigrated.env({
              PORT: '0',
              ...(name === 'management-api' ? { JWT_SECRET: jwtSecret } : {}),
            }),
          )),
        })),
      );
      for (const { name, code, output } of results) {
        expect(code, `${name}:\n${output}`).toBe(1);
        expect(output, output).toContain(`${name}: refusing to start: the database is not migrated`);
        expect(output, name).toContain('pnpm signal-cli migrate');
      }
      // Refusing is all it did: no service created a table behind the operator's back.
      const tables = await unmigrated.db.query(
        `SELECT count(*)::int AS n FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`,
      );
      expect(tables.rows[0]).toEqual({ n: 0 });
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
