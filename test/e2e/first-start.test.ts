import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitFor } from '../support/browser';
import { runSignalExpectingExit, startSignal } from '../support/signal-process';

describe('the first start of the all-in-one', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'signal-first-start-'));
  let busy: Server | undefined;
  afterAll(async () => {
    await new Promise((resolve) => busy?.close(resolve) ?? resolve(undefined));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('shows the generated admin password even when the start fails after seeding it', async () => {
    busy = createServer();
    const port = await new Promise<number>((resolve) => {
      busy?.listen(0, () => {
        const address = busy?.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    // The port is taken: the seed commits (admin, pipeline, HMAC secret), then listening fails.
    const failed = await runSignalExpectingExit({
      PORT: String(port),
      SIGNAL_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    });
    expect(failed.code).toBe(1);
    expect(failed.output).toMatch(/EADDRINUSE|address already in use/i);
    const password = /Admin password for \S+ \(shown once, store it now\): (\S+)/.exec(failed.output)?.[1];
    expect(password?.length).toBeGreaterThanOrEqual(16);
    expect(failed.output).toMatch(/HMAC secret for server sources \(shown once\): \S+/);

    // The next start serves, and does not show the secrets again.
    const signal = await startSignal({}, { dataDir });
    try {
      expect(signal.output()).not.toContain('shown once');
      expect(signal.output()).not.toContain(password);
    } finally {
      expect(await signal.stop()).toBe(0);
    }
  }, 150_000);

  it('a data directory that lost its demo files gets working ones back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signal-demo-files-'));
    try {
      const first = await startSignal({}, { dataDir: dir });
      expect(await first.stop()).toBe(0);
      // A write that never completed, and a file someone deleted.
      writeFileSync(join(dir, 'demo-pipeline-key'), '');
      rmSync(join(dir, 'demo-webhook-signing-secret'));

      const signal = await startSignal({}, { dataDir: dir });
      try {
        const key = readFileSync(join(dir, 'demo-pipeline-key'), 'utf8').trim();
        expect(key).toMatch(/^dk_(live|test)_/);
        expect(signal.output()).toContain(`pipeline key    ${key}`);
        const messageId = randomUUID();
        const res = await fetch(`${signal.baseUrl}/v1/t`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-pipeline-key': key,
            // A browser's: the default bot filter drops Node's own user agent.
            'user-agent':
              'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0',
          },
          body: JSON.stringify({
            event: 'add_to_cart',
            messageId,
            anonymousId: randomUUID(),
            context: { consent: { categories: { analytics: true, marketing: true } } },
          }),
        });
        expect(res.status).toBe(202);
        // The webhook signs with the regenerated secret, which the sink checks (401 otherwise): the event
        // reaches it as the webhook's body (the canonical event).
        const stats = z.object({
          last: z.object({ messageId: z.string().optional() }).passthrough().nullable(),
        });
        await waitFor(
          'the webhook delivery',
          async () => {
            const now = stats.parse(await (await fetch(`${signal.baseUrl}/demo/stats`)).json());
            return now.last?.messageId === messageId ? true : undefined;
          },
          { timeoutMs: 30_000 },
        );
      } finally {
        expect(await signal.stop()).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('with METRICS_TOKEN, /metrics on the public port answers only a scrape that sends it', async () => {
    const token = `${randomUUID()}${randomUUID()}`;
    const signal = await startSignal({ METRICS_TOKEN: token });
    try {
      expect(signal.output()).toContain('/metrics (Bearer METRICS_TOKEN)');
      const anonymous = await fetch(`${signal.baseUrl}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(await anonymous.json()).toEqual({
        error: { code: 'unauthorized', message: 'metrics need Authorization: Bearer <METRICS_TOKEN>' },
      });
      const scraped = await fetch(`${signal.baseUrl}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain('signal_crypto_operations_total');
      // Health stays open for probes; the token never reaches the output.
      expect((await fetch(`${signal.baseUrl}/health/live`)).status).toBe(200);
      expect(signal.output()).not.toContain(token);
    } finally {
      expect(await signal.stop()).toBe(0);
    }
  }, 150_000);
});
