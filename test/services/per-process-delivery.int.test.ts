/**
 * The per-process deployment end to end on the postgres bus: gateway, event processor and delivery worker as
 * three separate processes sharing PostgreSQL and Redis. An event sent to the gateway (over HTTPS, its
 * certificate from TLS_CERT_PATH/TLS_KEY_PATH) reaches a customer's private HTTPS webhook through the
 * webhook vendor adapter, with the integration (settings `{url, extraCaPem}`, encrypted signing secret)
 * created through the control plane — PII hashed, signed with the decrypted secret, ledgered once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { postgresAvailable, redisAvailable } from '@signal/testkit';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDeployment, type TestDeployment } from './support/deployment';
import { type SeededPipeline, seedPipeline } from './support/seed';
import { type ServiceProcess, startService, waitUntilReady } from './support/service-process';
import { startWebhookSink, type WebhookSink } from './support/webhook-sink';

const available = (await postgresAvailable()) && (await redisAvailable());

const BROWSER_UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const EMAIL = 'Jane.Doe@Example.com';

describe.skipIf(!available)('gateway → processor → worker as separate processes (postgres bus)', () => {
  let deployment: TestDeployment;
  let seeded: SeededPipeline;
  let sink: WebhookSink;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    deployment = await createTestDeployment({ migrate: true });
    seeded = await seedPipeline(deployment);
  });
  afterAll(async () => {
    for (const service of services) service.kill();
    await sink?.close();
    await deployment?.cleanup();
  });

  it('delivers an event sent to the gateway to the private HTTPS webhook, signed and hashed', async () => {
    const signingSecret = randomBytes(32).toString('base64url');
    sink = await startWebhookSink(signingSecret);
    const integration = await seeded.controlPlane.integrations.create(seeded.orgId, seeded.pipelineId, {
      vendor: 'webhook',
      name: 'Per-process webhook',
      settings: { url: `${sink.url}/webhook`, extraCaPem: sink.caPem },
      credentials: { signingSecret },
    });

    const gatewayCert = await sink.ca.issueServerCertificate({ dnsNames: ['localhost'] });
    const gateway = startService(
      'ingestion-gateway',
      deployment.env({
        PORT: '0',
        TLS_CERT_PATH: gatewayCert.certPath,
        TLS_KEY_PATH: gatewayCert.keyPath,
        TLS_MIN_VERSION: '1.3',
      }),
      { https: true },
    );
    const processor = startService('event-processor', deployment.env({ PORT: '0' }));
    const worker = startService('delivery-worker', deployment.env({ PORT: '0' }));
    services.push(gateway, processor, worker);
    const trusting = new Agent({ connect: { ca: sink.caPem } });
    try {
      await Promise.all([
        waitUntilReady(gateway, { dispatcher: trusting }),
        waitUntilReady(processor),
        waitUntilReady(worker),
      ]);

      const res = await request(`${gateway.baseUrl}/v1/t`, {
        method: 'POST',
        dispatcher: trusting,
        headers: {
          'content-type': 'application/json',
          'x-pipeline-key': seeded.pipelineKey,
          'user-agent': BROWSER_UA,
        },
        body: JSON.stringify({
          event: 'Order Completed',
          anonymousId: 'anon-per-process',
          properties: { value: 42, currency: 'EUR' },
          traits: { email: EMAIL },
          context: {
            page: { url: 'https://shop.example/checkout' },
            consent: { categories: { analytics: true, marketing: true } },
          },
        }),
      });
      expect(res.statusCode).toBe(202);
      const accepted = (await res.body.json()) as { messageIds: string[] };
      const messageId = accepted.messageIds[0];
      expect(messageId).toBeTypeOf('string');
      const sentAt = performance.now();

      const deadline = Date.now() + 30_000;
      const arrived = () => sink.requests.find((r) => r.headers['idempotency-key'] === messageId);
      while (!arrived() && Date.now() < deadline) await sleep(50);
      const delivery = arrived();
      if (!delivery) {
        throw new Error(
          `not delivered within 30 s\n--- processor\n${processor.output()}\n--- worker\n${worker.output()}`,
        );
      }
      expect(delivery.path).toBe('/webhook');
      expect(delivery.signatureValid).toBe(true);
      const body = JSON.parse(delivery.body) as {
        messageId: string;
        event: string;
        traits: { email: string };
      };
      expect(body.messageId).toBe(messageId);
      expect(body.event).toBe('Order Completed');
      expect(body.traits.email).toBe(createHash('sha256').update(EMAIL.toLowerCase()).digest('hex'));
      expect(delivery.body.toLowerCase()).not.toContain(EMAIL.toLowerCase());

      // The worker records the acceptance (after the vendor's answer, before committing the offset): a
      // redelivery would not send it again.
      const ledgerRows = async () => {
        const { rows } = await deployment.db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM delivery_ledger WHERE integration_id = $1 AND message_id = $2',
          [integration.id, messageId],
        );
        return rows[0]?.n ?? 0;
      };
      const ledgerDeadline = Date.now() + 10_000;
      while ((await ledgerRows()) === 0 && Date.now() < ledgerDeadline) await sleep(50);
      expect(await ledgerRows()).toBe(1);

      const exits = await Promise.all([gateway.stop(), processor.stop(), worker.stop()]);
      for (const exit of exits)
        expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
      expect(sink.requests.filter((r) => r.headers['idempotency-key'] === messageId)).toHaveLength(1);

      console.info(
        `[per-process delivery] 202 → webhook in ${Math.round(delivery.at - sentAt)} ms across 3 processes; ` +
          `stopped in ${exits.map((e) => e.ms).join('/')} ms (gateway/processor/worker)`,
      );
    } finally {
      await trusting.close();
    }
  }, 90_000);
});
