import { randomBytes, randomUUID } from 'node:crypto';
import { type ConsumedMessage, createPostgresBus } from '@signal/bus';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createDlqStore } from '@signal/delivery-worker';
import { canonicalEventSchema, type DlqMessage, deliveryMessageSchema, topics } from '@signal/events';
import type { Database } from '@signal/store';
import { postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type FreshDatabase, freshDatabase } from './cli.fixtures';

const NAMESPACE = 'clitest';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
let position = 0;

function event(email: string) {
  const now = new Date().toISOString();
  return canonicalEventSchema.parse({
    type: 'track',
    event: 'Purchase',
    anonymousId: randomUUID(),
    userId: email,
    messageId: `msg-${randomBytes(6).toString('hex')}`,
    properties: { value: 42, email },
    traits: {},
    context: { consent: {}, provenance: 'pipeline_key', ip: '198.51.100.9' },
    timestamp: now,
    receivedAt: now,
    org: 'org_cli',
    pipelineId: 'pl_cli',
  });
}

const integrationId = () => `int_${randomBytes(12).toString('hex')}`;

const available = await postgresAvailable();

describe.skipIf(!available)('signal-cli dlq (PostgreSQL)', () => {
  let database: FreshDatabase;
  let db: Database;
  let env: Record<string, string>;
  // The deployment's key: the worker's indexer (below) seals the letters with it, the CLI opens them and
  // seals what it replays onto the bus, the reader below opens that.
  const encryptionKey = randomBytes(32);
  const busCrypto = createCryptoService({ keyring: createKeyring({ current: encryptionKey }) });

  /** Indexes a dead letter as the worker's DLQ indexer does; returns its id and message id. */
  async function plant(integration: string, failedAt: Date, original?: unknown) {
    const e = event(`buyer-${randomBytes(3).toString('hex')}@example.com`);
    const letter: DlqMessage = {
      error: 'retries_exhausted',
      details: 'the vendor answered 503 five times',
      original: (original ?? {
        integrationId: integration,
        event: e,
        attempt: { number: 5 },
      }) as DlqMessage['original'],
      originalKey: e.anonymousId ?? 'k',
      topic: topics.delivery(NAMESPACE, integration).name,
      integrationId: integration,
      attempts: 5,
      failedAt: failedAt.toISOString(),
    };
    position += 1;
    await createDlqStore(db, busCrypto).index([{ partition: 0, offset: String(position), letter }]);
    const { rows } = await db.query<{ id: string }>(
      'SELECT id::text AS id FROM delivery_dlq WHERE dlq_partition = 0 AND dlq_offset = $1',
      [String(position)],
    );
    return { id: rows[0]?.id ?? '', event: e };
  }

  async function readTopic(topic: string, count: number): Promise<ConsumedMessage[]> {
    const bus = createPostgresBus({ db, logger: silent, crypto: busCrypto });
    const seen: ConsumedMessage[] = [];
    let resolve: () => void = () => {};
    const enough = new Promise<void>((r) => {
      resolve = r;
    });
    const subscription = await bus.subscribe({
      groupId: `reader-${randomBytes(4).toString('hex')}`,
      topics: [topic],
      async handler(batch) {
        seen.push(...batch.messages);
        if (seen.length >= count) resolve();
      },
    });
    const timer = setTimeout(resolve, 10_000);
    await enough;
    clearTimeout(timer);
    await subscription.stop({ deadlineMs: 1000 });
    await bus.close();
    return seen;
  }

  beforeAll(async () => {
    database = await freshDatabase('signal_cli_dlq');
    env = {
      DATABASE_URL: database.url,
      SIGNAL_NAMESPACE: NAMESPACE,
      LOG_LEVEL: 'warn',
      ENCRYPTION_KEY: encryptionKey.toString('hex'),
    };
    expect((await cli(['migrate'], env)).code).toBe(0);
    db = await database.open(NAMESPACE);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('lists pending dead letters newest first, filtered by integration and --since, with a limit', async () => {
    const mine = integrationId();
    const base = Date.parse('2026-03-01T09:00:00Z');
    const planted = [];
    for (let i = 0; i < 3; i++) planted.push(await plant(mine, new Date(base + i * 3600_000)));
    await plant(integrationId(), new Date(base));

    const all = await cli(['dlq', 'list', '--integration', mine], env);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s+id\s+failed at\s+integration\s+error/);
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/)[0])).toEqual(planted.map((p) => p.id).reverse());
    expect(lines[1]).toContain('retries_exhausted');
    expect(all.stderr).toMatch(/3 pending dead letter\(s\) shown of \d+ pending in total/);

    const since = await cli(['dlq', 'list', '--integration', mine, '--since', '2026-03-01T10:00:00Z'], env);
    expect(since.stdout.trimEnd().split('\n')).toHaveLength(3);
    const limited = await cli(['dlq', 'list', '--integration', mine, '--limit', '1'], env);
    expect(limited.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(limited.stderr).toMatch(/more match/);
  });

  it('prints entries as JSON lines with personal data masked, from letters sealed at rest', async () => {
    const mine = integrationId();
    const { id, event: e } = await plant(mine, new Date());
    // In the table, the event is sealed: neither the e-mail (user id, property) nor the IP is there.
    const { rows } = await db.query('SELECT * FROM delivery_dlq WHERE id = $1::bigint', [id]);
    expect(rows).toHaveLength(1);
    for (const planted of [e.userId ?? '-', '198.51.100.9', e.anonymousId ?? '-']) {
      expect(JSON.stringify(rows)).not.toContain(planted);
    }
    expect(rows[0]).toMatchObject({ letter: expect.stringMatching(/^v1\./) });

    const run = await cli(['dlq', 'list', '--integration', mine, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const entry = JSON.parse(run.stdout.trim());
    expect(entry).toMatchObject({
      integrationId: mine,
      messageId: e.messageId,
      error: 'retries_exhausted',
      details: 'the vendor answered 503 five times',
    });
    expect(entry.original.event.event).toBe('Purchase');
    expect(entry.original.event.properties.value).toBe(42);
    expect(run.stdout).not.toContain(e.userId ?? '-');
    expect(run.stdout).not.toContain('198.51.100.9');
  });

  it('replays the given ids as fresh first attempts, marks them replayed and audits the counts', async () => {
    const mine = integrationId();
    const a = await plant(mine, new Date());
    const b = await plant(mine, new Date());
    const kept = await plant(mine, new Date());
    const run = await cli(['dlq', 'replay', '--ids', `${a.id},${b.id}`], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('replayed 2 dead letter(s) onto their topics\n');

    const messages = await readTopic(topics.delivery(NAMESPACE, mine).name, 2);
    const values = messages.map((m) => deliveryMessageSchema.parse(JSON.parse(m.value)));
    expect(values.map((v) => v.event.messageId).sort()).toEqual(
      [a.event.messageId, b.event.messageId].sort(),
    );
    expect(values.every((v) => v.attempt.number === 1)).toBe(true);

    const left = await cli(['dlq', 'list', '--integration', mine], env);
    expect(
      left.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/)[0]),
    ).toEqual([kept.id]);
    const again = await cli(['dlq', 'replay', '--ids', a.id], env);
    expect(again.stdout).toContain('1 id(s) matched no pending dead letter');

    const { rows } = await db.query<{ changes: Record<string, { new: unknown }>; user_agent: string }>(
      "SELECT changes, user_agent FROM audit_log WHERE action = 'dlq.replayed' ORDER BY seq",
    );
    expect(rows[0]?.changes.replayed?.new).toBe(2);
    expect(rows[0]?.user_agent).toBe('signal-cli');
    expect(JSON.stringify(rows)).not.toContain(a.event.messageId);
  });

  it('replays one integration within [--since, --until) and reports entries it cannot replay (exit 1)', async () => {
    const mine = integrationId();
    const base = Date.parse('2026-02-01T00:00:00Z');
    const early = await plant(mine, new Date(base));
    const inside = [];
    for (let i = 1; i <= 3; i++) inside.push(await plant(mine, new Date(base + i * 3600_000)));
    const broken = await plant(mine, new Date(base + 2 * 3600_000), 'not an event');
    const run = await cli(
      [
        'dlq',
        'replay',
        '--integration',
        mine,
        '--since',
        '2026-02-01T01:00:00Z',
        '--until',
        '2026-02-01T05:00:00Z',
      ],
      env,
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('replayed 3 dead letter(s)');
    expect(run.stdout).toContain(`  ${broken.id}: not_replayable`);
    const left = await cli(['dlq', 'list', '--integration', mine], env);
    expect(
      left.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/)[0])
        .sort(),
    ).toEqual([early.id, broken.id].sort());
  });

  it('refuses a replay without a selection, with both selections, or with malformed values (exit 2)', async () => {
    for (const argv of [
      ['dlq'],
      ['dlq', 'purge'],
      ['dlq', 'replay'],
      ['dlq', 'replay', '--since', '2026-01-01T00:00:00Z'],
      ['dlq', 'replay', '--ids', '1', '--integration', 'int_x'],
      ['dlq', 'replay', '--ids', 'abc'],
      ['dlq', 'replay', '--integration', 'int_x', '--limit', '5'],
      ['dlq', 'list', '--since', 'yesterday'],
      ['dlq', 'list', '--limit', '0'],
      ['dlq', 'list', '--ids', '1'],
      [
        'dlq',
        'list',
        '--integration',
        'int_x',
        '--since',
        '2026-02-02T00:00:00Z',
        '--until',
        '2026-02-01T00:00:00Z',
      ],
    ]) {
      const run = await cli(argv, env);
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stderr).toContain('usage: signal-cli dlq');
    }
  });

  it('needs the key to list or replay (the letters are sealed), and reports a letter it cannot open', async () => {
    const mine = integrationId();
    const { id } = await plant(mine, new Date());
    const { ENCRYPTION_KEY: _key, ...keyless } = env;
    for (const argv of [
      ['dlq', 'list', '--integration', mine],
      ['dlq', 'replay', '--ids', id],
    ]) {
      const run = await cli(argv, keyless);
      expect(run.code, argv.join(' ')).toBe(1);
      expect(run.stderr).toMatch(/ENCRYPTION_KEY is not set/);
    }
    // Under another key the letter does not open: listed as unreadable, skipped by a replay, left pending.
    const other = { ...env, ENCRYPTION_KEY: randomBytes(32).toString('hex') };
    const listed = await cli(['dlq', 'list', '--integration', mine, '--json'], other);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout.trim())).toMatchObject({
      id,
      original: null,
      details: expect.stringContaining('cannot be opened (unknown_key_id)'),
    });
    const replayed = await cli(['dlq', 'replay', '--ids', id], other);
    expect(replayed.code).toBe(1);
    expect(replayed.stdout).toContain(`  ${id}: unreadable`);
    const { rows } = await db.query<{ replayed_at: Date | null }>(
      'SELECT replayed_at FROM delivery_dlq WHERE id = $1::bigint',
      [id],
    );
    expect(rows[0]?.replayed_at).toBeNull();
  });
});
