/**
 * Where the gateway's CPU per event goes on `/v1/batch` (100 visitors' events), stage by stage, in process:
 * the functions `accept` and the bus writer call, on the body `pnpm bench gateway` sends, without HTTP,
 * PGlite or a second process, so the figures barely move with the machine's load (the HTTP bench's do).
 *
 *   pnpm bench gateway-stages        (runs: tsx test/bench/gateway-stages.ts)
 *
 * Baseline: JSON.parse of the same body, what the bare server of `pnpm bench gateway` does per event. Each
 * stage runs in rounds of the same number of batches; the table shows the median µs per event and its ratio
 * to the baseline's median. The stages' sum is the in-process share of the gateway's cost per event; the rest
 * of row (c) in `pnpm bench gateway` is HTTP, PGlite and GC of a long run.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { encodeSegment } from '../../packages/bus/src/postgres/segment';
import { segmentContext } from '../../packages/bus/src/sealing';
import { createCryptoService, createKeyring } from '../../packages/crypto/src/index';
import {
  type CanonicalEvent,
  type EventInput,
  parseEventInput,
  stampEvent,
} from '../../packages/events/src/index';
import { parseJsonBytes } from '../../packages/http/src/index';
import { extractClickIds } from '../../services/ingestion-gateway/src/collect/click-ids';
import { benchBatchBody } from './support/bench-events';

const ROUNDS = 15;
const BATCHES_PER_ROUND = 200;
/** 100 events over the bus's 8 default partitions: about this many per segment of one flush. */
const SEGMENT_EVENTS = 13;

const body = Buffer.from(benchBatchBody);
const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });

// Each stage's input is the previous stage's output, computed once.
const parsed = parseJsonBytes(body, {});
if (!parsed.ok) throw new Error('bench body does not parse');
const raw = (parsed.value as { batch: unknown[] }).batch;
const inputs = raw.map((r) => parseEventInput(r).data as EventInput);
const receivedAtMs = Date.now();
const stamp = {
  org: 'org_bench',
  pipelineId: 'pl_bench',
  provenance: 'pipeline_key' as const,
  receivedAt: new Date(receivedAtMs).toISOString(),
  messageId: randomUUID(),
  anonymousId: randomUUID(),
  ip: '127.0.0.1',
  userAgent: 'autocannon',
};
const stampOne = (input: EventInput) =>
  stampEvent(
    input,
    { ...stamp, messageId: randomUUID() },
    { clickIds: extractClickIds(input.context?.page?.url, receivedAtMs), gpc: false },
  ).data as CanonicalEvent;
const events = inputs.map(stampOne);
const messages = events.map((e) => ({ key: e.anonymousId ?? '', value: JSON.stringify(e) }));
const segments: (typeof messages)[] = [];
for (let i = 0; i < messages.length; i += SEGMENT_EVENTS)
  segments.push(messages.slice(i, i + SEGMENT_EVENTS));
const encoded = segments.map((s) =>
  encodeSegment(
    s,
    s.map(() => 1),
  ),
);

const stages: [name: string, perBatch: () => void][] = [
  ['baseline: JSON.parse (the bare server)', () => JSON.parse(body.toString('utf8'))],
  ['read: UTF-8, depth, JSON.parse, forbidden keys', () => parseJsonBytes(body, {})],
  ['validate: parseEventInput', () => raw.map(parseEventInput)],
  ['stamp: click ids, messageId, stampEvent', () => inputs.map(stampOne)],
  ['serialize: JSON.stringify per event', () => events.map((e) => JSON.stringify(e))],
  [
    'segment: encodeSegment',
    () =>
      segments.map((s) =>
        encodeSegment(
          s,
          s.map(() => 1),
        ),
      ),
  ],
  [
    'seal: one v1 seal per segment',
    () =>
      encoded.map((e, i) =>
        crypto.seal(e, segmentContext({ topic: 'bench.raw-events', partition: i % 8, baseOffset: i })),
      ),
  ],
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const perEvent = new Map<string, number[]>();
for (const [name, run] of stages) {
  for (let i = 0; i < BATCHES_PER_ROUND; i++) run(); // warm-up
  perEvent.set(name, []);
}
// Stages interleaved round by round, so drift on a shared machine hits all of them alike.
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of stages) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCHES_PER_ROUND; i++) run();
    const ns = Number(process.hrtime.bigint() - t0);
    perEvent.get(name)?.push(ns / 1000 / BATCHES_PER_ROUND / raw.length);
  }
}

const baseline = median(perEvent.get(stages[0]?.[0] ?? '') ?? []);
console.log(
  `${raw.length} events per batch (${body.length} bytes), ${ROUNDS} rounds of ${BATCHES_PER_ROUND} batches, Node ${process.version}\n`,
);
console.log('| stage | µs/event | × baseline |');
console.log('|---|---:|---:|');
let sum = 0;
for (const [name] of stages) {
  const us = median(perEvent.get(name) ?? []);
  if (name !== stages[0]?.[0]) sum += us;
  console.log(`| ${name} | ${us.toFixed(2)} | ${(us / baseline).toFixed(1)} |`);
}
console.log(`| **gateway stages in all** | **${sum.toFixed(2)}** | **${(sum / baseline).toFixed(1)}** |`);
console.log(
  `\nat one full core the in-process stages alone allow ≈ ${Math.round(1e6 / sum).toLocaleString('en-US')} events/s (target of row (c): 100,000 per core, with HTTP and the bus)`,
);
