import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase } from '@signal/store';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { metricValue, waitFor } from '../support/browser';
import { type RunningSignal, startSignal } from '../support/signal-process';

/**
 * The all-in-one killed with SIGKILL (no graceful stop, no drain, nothing flushed) while browsers are sending
 * and the processor and worker are busy, then restarted on the same data directory. What a user is promised:
 * every event answered 202 before the kill reaches the vendor. The proof is read from the
 * data directory after a graceful stop: the delivery ledger of the demo webhook (one row per delivered
 * messageId, ARCHITECTURE §6) holds every acknowledged event, and its dead-letter queue holds none of them.
 */

const NAMESPACE = 'e2ecrash';
const VISITORS = 7;
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const FULL_CONSENT = {
  categories: { essential: true, functional: true, analytics: true, marketing: true, personalization: true },
};

interface Sent {
  readonly status: number | 'network error';
  readonly messageIds: readonly string[];
}

/** What Datafly.js sends: a batch of one visitor's events, with full consent and a browser's user agent. */
async function sendBatch(baseUrl: string, key: string, label: string, visitor: number): Promise<Sent> {
  const messageIds = Array.from({ length: 5 }, (_, i) => `crash-${label}-${i}`);
  const batch = messageIds.map((messageId, i) => ({
    type: 'track',
    event: i === 4 ? 'purchase' : 'add_to_cart',
    anonymousId: `crash-visitor-${visitor}`,
    messageId,
    properties: { value: i + 1, currency: 'EUR' },
    context: { consent: FULL_CONSENT },
  }));
  try {
    const res = await fetch(`${baseUrl}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pipeline-key': key, 'user-agent': BROWSER_UA },
      body: JSON.stringify({ batch }),
      signal: AbortSignal.timeout(15_000),
    });
    await res.arrayBuffer();
    return { status: res.status, messageIds };
  } catch {
    return { status: 'network error', messageIds };
  }
}

const stats = z.object({ sink: z.number() });
async function sinkCount(signal: RunningSignal): Promise<number> {
  return stats.parse(await (await fetch(`${signal.baseUrl}/demo/stats`)).json()).sink;
}

describe('the all-in-one killed while events flow, then restarted', () => {
  it('delivers every event it acknowledged before the kill to the vendor', {
    timeout: 240_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signal-crash-'));
    const dataDir = join(dir, 'data');
    let running: RunningSignal | undefined;
    try {
      const first = await startSignal({ SIGNAL_NAMESPACE: NAMESPACE }, { dataDir, timeoutMs: 60_000 });
      running = first;
      const key = readFileSync(join(dataDir, 'demo-pipeline-key'), 'utf8').trim();

      // Four senders in parallel; the kill lands once 60 batches were acknowledged, with requests in flight
      // and the processor and worker behind the gateway.
      const sent: Sent[] = [];
      let stop = false;
      let n = 0;
      const sender = async () => {
        while (!stop) {
          const i = n++;
          const s = await sendBatch(first.baseUrl, key, String(i), i % VISITORS);
          sent.push(s);
          if (s.status === 'network error') return;
        }
      };
      const senders = Array.from({ length: 4 }, sender);
      await waitFor(
        '60 acknowledged batches',
        () => (sent.filter((s) => s.status === 202).length >= 60 ? true : undefined),
        { timeoutMs: 60_000 },
      );
      const exited = once(first.process, 'exit');
      first.process.kill('SIGKILL');
      await exited;
      stop = true;
      await Promise.all(senders);
      const acknowledged = sent.filter((s) => s.status === 202).flatMap((s) => s.messageIds);
      // Anything else is a refusal a browser retries (a 503, or the connection the kill cut), never a loss.
      for (const s of sent) expect([202, 503, 'network error']).toContain(s.status);

      // A delivery that fails now and then on a loaded machine is retried within seconds, not the default minute.
      const second = await startSignal(
        { SIGNAL_NAMESPACE: NAMESPACE, RETRY_BACKOFF_BASE: '1' },
        { dataDir, timeoutMs: 60_000 },
      );
      running = second;
      // One more batch per visitor, after everything sent before: events of one visitor share a partition and
      // are processed in order, so once these have reached the vendor and the count stays still, the backlog
      // the kill left behind has been worked off.
      for (let v = 0; v < VISITORS; v++) {
        expect((await sendBatch(second.baseUrl, key, `after-${v}`, v)).status).toBe(202);
      }
      let last = -1;
      let stillSince = Date.now();
      await waitFor(
        'the sink to stop receiving',
        async () => {
          const now = await sinkCount(second);
          if (now !== last) {
            last = now;
            stillSince = Date.now();
            return undefined;
          }
          // A webhook delivery that was scheduled for a retry needs longer than the 3 s of quiet to go out.
          const metrics = await (await fetch(`${second.baseUrl}/metrics`)).text();
          const retried = metricValue(metrics, 'signal_deliveries_total', {
            vendor: 'webhook',
            outcome: 'retry',
          });
          const quietFor = retried > 0 ? 15_000 : 3_000;
          return now >= VISITORS && Date.now() - stillSince > quietFor ? true : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
      expect(await second.stop()).toBe(0);
      running = undefined;

      const db = await createDatabase({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
      try {
        const { rows: webhooks } = await db.query<{ id: string }>(
          `SELECT id FROM integrations WHERE vendor = 'webhook'`,
        );
        expect(webhooks).toHaveLength(1);
        const webhook = webhooks[0]?.id;
        const { rows: ledger } = await db.query<{ message_id: string }>(
          'SELECT message_id FROM delivery_ledger WHERE integration_id = $1',
          [webhook],
        );
        const delivered = new Set(ledger.map((r) => r.message_id));
        expect(acknowledged.length).toBeGreaterThanOrEqual(300);
        expect(acknowledged.filter((id) => !delivered.has(id))).toEqual([]);
        const { rows: dead } = await db.query<{ n: string }>(
          'SELECT count(*)::text AS n FROM delivery_dlq WHERE integration_id = $1',
          [webhook],
        );
        expect(dead[0]?.n).toBe('0');
      } finally {
        await db.close();
      }
    } finally {
      const child = running?.process;
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
