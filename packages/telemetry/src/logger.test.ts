import { Writable } from 'node:stream';
import { Secret } from '@signal/config';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger';
import { createMetrics } from './metrics';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', name: 'test', destination });
  return { logger, output: () => lines.join('') };
}

const KEY = '3f'.repeat(32);
const PASSWORD = 'correct horse battery staple';
const EMAIL = 'jane.doe@example.com';
const CREDENTIAL = 'EAAB-meta-access-token-0123456789';

describe('createLogger redaction', () => {
  it('keeps keys, passwords, emails and credentials out of the output wherever they sit', () => {
    const { logger, output } = capture();
    logger.info({ encryptionKey: KEY, password: PASSWORD }, 'config loaded');
    logger.info({ user: { email: EMAIL, role: 'admin' } }, 'login');
    logger.warn(
      { integration: { id: 'int_1', credentials: { access_token: CREDENTIAL } } },
      'delivery failed',
    );
    logger.error({ nested: [{ deeper: { value: KEY } }] }, `lookup for ${EMAIL} failed`);
    logger.info({ note: `key=${KEY}`, secret: new Secret(KEY) }, 'hex in free text');
    logger.info({ err: new Error(`cannot reach ${EMAIL}`) }, 'error object');
    const out = output();
    for (const secret of [KEY, PASSWORD, EMAIL, CREDENTIAL]) expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
    // The useful parts survive.
    expect(out).toContain('"role":"admin"');
    expect(out).toContain('"id":"int_1"');
    expect(out).toContain('delivery failed');
  });

  it('writes JSON lines with the service name and child bindings', () => {
    const { logger, output } = capture();
    logger.child({ component: 'gateway' }).info({ count: 3 }, 'accepted');
    const line = JSON.parse(output().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ service: 'test', component: 'gateway', count: 3, msg: 'accepted' });
    expect(typeof line.time).toBe('string');
  });

  it('does not log below the configured level', () => {
    const { logger, output } = capture();
    logger.trace({ x: 1 }, 'too quiet');
    expect(output()).toBe('');
  });
});

describe('createMetrics', () => {
  it('registers on its own registry, not the global one, and reuses metrics by name', async () => {
    const a = createMetrics({ processMetrics: false });
    const b = createMetrics({ processMetrics: false });
    const counter = a.counter('signal_events_received_total', 'Events received', ['endpoint']);
    counter.inc({ endpoint: 'track' });
    expect(a.counter('signal_events_received_total', 'Events received', ['endpoint'])).toBe(counter);
    b.counter('signal_events_received_total', 'Events received', ['endpoint']);
    expect(await a.metrics()).toContain('signal_events_received_total{endpoint="track"} 1');
    expect(await b.metrics()).not.toContain('endpoint="track"');
  });
});

describe('scrubString', () => {
  it('finishes on long strings without an @ (the quadratic pattern took minutes here)', async () => {
    const { scrubString } = await import('./logger');
    const long = 'a'.repeat(300_000);
    expect(scrubString(long)).toBe(long);
    expect(scrubString(`${long}@example.com`)).toContain('[redacted-email]');
  });
});
