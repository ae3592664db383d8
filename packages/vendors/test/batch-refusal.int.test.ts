import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryOutcome, DeliveryReport, VendorAdapterId } from '../src/index';
import { now, purchases } from './fixtures';
import { ALL_SECRETS, dedupIdOf, integrationFor, rowsOf } from './integrations';
import {
  createTlsHarness,
  type RecordedRequest,
  type Reply,
  type TlsHarness,
  type VendorSink,
} from './vendor-sink';

/**
 * Meta, TikTok, LinkedIn, Pinterest and Snap refuse a whole batch request when one of its events is invalid, and process none
 * of it. One bad event must not sink the good ones: the rows the vendor names are dead-lettered and the rest
 * go again in a follow-up request; when it names none, the batch is halved until the bad event is alone
 * (bounded: 2·⌈log2 n⌉ follow-up requests). Every vendor here is a real HTTPS server that validates each
 * request the way the vendor does and answers in its format.
 */

let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

/** The message ids of a request's rows, in request order. */
function idsOf(vendor: VendorAdapterId, request: RecordedRequest): string[] {
  return rowsOf(vendor, request.body).map((row) => String(dedupIdOf(vendor, row)));
}

/**
 * A vendor that refuses any request holding one of `bad` (answered by `refuse` with the bad rows' positions in
 * that request) and accepts the others with `accept`. Records what it accepted.
 */
function strictVendor(
  vendor: VendorAdapterId,
  bad: ReadonlySet<string>,
  refuse: (positions: number[], request: RecordedRequest) => Reply,
  accept: (count: number) => Reply,
): { accepted: string[] } {
  const accepted: string[] = [];
  sink.reply((request) => {
    const ids = idsOf(vendor, request);
    const positions = ids.flatMap((id, i) => (bad.has(id) ? [i] : []));
    if (positions.length > 0) return refuse(positions, request);
    accepted.push(...ids);
    return accept(ids.length);
  });
  return { accepted };
}

async function send(vendor: VendorAdapterId, count: number): Promise<DeliveryReport> {
  return integrationFor(vendor, sink.origin).deliver(purchases(count), {
    transport: { dispatcher: tls.dispatcher },
    now,
  });
}

function byId(report: DeliveryReport): Map<string, DeliveryOutcome> {
  return new Map(report.outcomes.map((o) => [o.messageId, o]));
}

/** Follow-up requests allowed for a batch of `n` on top of the first. */
const budget = (n: number) => 2 * Math.ceil(Math.log2(n));

/** Checks the shape every test shares: bad events dead-lettered, every good one delivered exactly once. */
function expectIsolated(report: DeliveryReport, bad: ReadonlySet<string>, accepted: readonly string[]) {
  for (const outcome of report.outcomes) {
    if (bad.has(outcome.messageId)) {
      expect(outcome).toMatchObject({ kind: 'dead_letter', reason: 'validation_failed' });
    } else {
      expect(outcome).toEqual({ kind: 'delivered', messageId: outcome.messageId });
    }
  }
  const good = report.outcomes.map((o) => o.messageId).filter((id) => !bad.has(id));
  expect([...accepted].sort()).toEqual([...good].sort());
}

describe('Meta: Graph refuses the whole request for one invalid event', () => {
  const metaError = (subcode: number, userMsg: string): Reply => ({
    status: 400,
    body: {
      error: {
        message: 'Invalid parameter',
        type: 'OAuthException',
        code: 100,
        error_subcode: subcode,
        is_transient: false,
        error_user_title: 'Invalid server event',
        error_user_msg: userMsg,
        fbtrace_id: 'AbCdEf',
      },
    },
  });
  const accept = (count: number): Reply => ({
    status: 200,
    body: { events_received: count, fbtrace_id: 't' },
  });

  it('names the event ($[data][i]): that one is dead-lettered, the others delivered in one follow-up', async () => {
    const bad = new Set(['msg-3']);
    const vendor = strictVendor(
      'meta',
      bad,
      // Meta reports one error, the first it finds; the message quotes what it refused.
      ([first]) =>
        metaError(
          2804019,
          `Unexpected key "em_clear" on param "$['data'][${first}]" for John.Smith@Gmail.com.`,
        ),
      accept,
    );

    const report = await send('meta', 6);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.map((r) => r.events)).toEqual([6, 5]);
    const dead = byId(report).get('msg-3');
    expect(dead).toMatchObject({ detail: 'Graph error 100/2804019', lastResponse: { status: 400 } });
    // The vendor's echo is scrubbed: no PII, no token in any outcome.
    const captured = JSON.stringify(report);
    expect(captured).not.toContain('John.Smith@Gmail.com');
    for (const secret of ALL_SECRETS) expect(captured).not.toContain(secret.slice(0, 10));
  });

  it('names several events one request at a time: each named one is dead-lettered', async () => {
    const bad = new Set(['msg-0', 'msg-4', 'msg-7']);
    const vendor = strictVendor(
      'meta',
      bad,
      ([first]) => metaError(2804019, `Invalid parameter on param "$['data'][${first}]['user_data']"`),
      accept,
    );

    const report = await send('meta', 8);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests).toHaveLength(4);
  });

  it('names no event (2804003, too old): the batch is halved until the bad one is alone', async () => {
    const bad = new Set(['msg-5']);
    const vendor = strictVendor(
      'meta',
      bad,
      () =>
        metaError(
          2804003,
          'The timestamp for this event is too far in the past. Events need to be logged within seven days.',
        ),
      accept,
    );

    const report = await send('meta', 8);

    expectIsolated(report, bad, vendor.accepted);
    // One bad event among n costs at most ⌈log2 n⌉ + 1 follow-ups: log2 n halvings, then the rest at once.
    expect(report.requests.length).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(8)) + 1);
    expect(byId(report).get('msg-5')).toMatchObject({ detail: 'Graph error 100/2804003' });
  });

  it('a refusal of the request itself (100/33, unknown dataset) is not split: one request, all dead-lettered', async () => {
    sink.reply(() => metaError(33, 'Object with ID does not exist'));

    const report = await send('meta', 8);

    expect(report.requests).toHaveLength(1);
    for (const outcome of report.outcomes) {
      expect(outcome).toMatchObject({ kind: 'dead_letter', reason: 'validation_failed' });
    }
  });

  it('stays within the budget when every request is refused, and dead-letters what it could not isolate', async () => {
    // No event is ever accepted: most likely a refusal of the request after all, so nothing is retried for it.
    sink.reply(() => metaError(2804030, 'Limited Data Use selection required'));

    const report = await send('meta', 16);

    expect(report.requests.length).toBeLessThanOrEqual(1 + budget(16));
    for (const outcome of report.outcomes) {
      expect(outcome).toMatchObject({ kind: 'dead_letter', reason: 'validation_failed' });
    }
  });

  it('an auth failure on a follow-up stops the splitting: the rest shares it', async () => {
    let calls = 0;
    sink.reply(() => {
      calls += 1;
      return calls === 1
        ? metaError(2804019, `Invalid parameter on param "$['data'][1]"`)
        : { status: 400, body: { error: { message: 'expired', type: 'OAuthException', code: 190 } } };
    });

    const report = await send('meta', 4);

    expect(report.requests).toHaveLength(2);
    expect(report.outcomes.map((o) => [o.kind, 'reason' in o ? o.reason : undefined])).toEqual([
      ['dead_letter', 'auth_failed'],
      ['dead_letter', 'validation_failed'],
      ['dead_letter', 'auth_failed'],
      ['dead_letter', 'auth_failed'],
    ]);
  });
});

describe('TikTok: code 40002 for the whole request, without naming the event', () => {
  const refuse = (): Reply => ({
    status: 200,
    body: {
      code: 40002,
      message: 'Invalid value for event_id: not a valid string.',
      request_id: 'r-1',
    },
  });
  const accept = (): Reply => ({ status: 200, body: { code: 0, message: 'OK', request_id: 'r-2' } });

  it('halves the batch until the bad event is alone; every other event is delivered once', async () => {
    const bad = new Set(['msg-4']);
    const vendor = strictVendor('tiktok', bad, refuse, accept);

    const report = await send('tiktok', 6);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.length).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(6)) + 1);
    expect(byId(report).get('msg-4')).toMatchObject({
      detail: 'TikTok code 40002',
      lastResponse: { status: 200 },
    });
  });

  it('the bad event first or last in the batch, or the batch of one', async () => {
    for (const [count, culprit] of [
      [7, 'msg-0'],
      [7, 'msg-6'],
      [1, 'msg-0'],
    ] as const) {
      const bad = new Set([culprit]);
      const vendor = strictVendor('tiktok', bad, refuse, accept);
      const report = await send('tiktok', count);
      expectIsolated(report, bad, vendor.accepted);
      expect(report.requests.length).toBeLessThanOrEqual(
        count === 1 ? 1 : 1 + Math.ceil(Math.log2(count)) + 1,
      );
    }
  });

  it('two bad events: none of the good ones is dead-lettered; what is left over goes to the next attempt', async () => {
    const bad = new Set(['msg-1', 'msg-6']);
    const vendor = strictVendor('tiktok', bad, refuse, accept);

    const first = await send('tiktok', 8);

    expect(first.requests.length).toBeLessThanOrEqual(1 + budget(8));
    for (const outcome of first.outcomes) {
      if (bad.has(outcome.messageId)) expect(outcome.kind).not.toBe('delivered');
      else expect(outcome.kind === 'delivered' || outcome.kind === 'retry').toBe(true);
      if (outcome.kind === 'retry') expect(outcome.reason).toBe('batch_partially_rejected');
    }
    // The worker's next attempt (a new delivery of what came back as retry) finishes the job.
    const retried = first.outcomes.filter((o) => o.kind === 'retry').map((o) => o.messageId);
    const events = purchases(8).filter((e) => retried.includes(e.messageId));
    const second = await integrationFor('tiktok', sink.origin).deliver(events, {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    const final = new Map([...byId(first), ...byId(second)]);
    for (const [id, outcome] of final) {
      expect(outcome.kind).toBe(bad.has(id) ? 'dead_letter' : 'delivered');
    }
    expect(new Set(vendor.accepted).size).toBe(vendor.accepted.length);
  });

  it('an auth failure (40001) is not split: one request', async () => {
    sink.reply(() => ({ status: 200, body: { code: 40001, message: 'no permission', request_id: 'r' } }));
    const report = await send('tiktok', 8);
    expect(report.requests).toHaveLength(1);
    for (const outcome of report.outcomes) expect(outcome).toMatchObject({ reason: 'auth_failed' });
  });
});

describe('LinkedIn: 422 naming the rows of a BATCH_CREATE', () => {
  const refuseNamed = (positions: number[]): Reply => ({
    status: 422,
    body: {
      status: 422,
      message: positions
        .map((i) => `Index: ${i}, ERROR :: /conversionHappenedAt :: must be within 90 days\n`)
        .join(''),
    },
  });
  const accept = (count: number): Reply => ({
    status: 200,
    body: { elements: Array.from({ length: count }, () => ({ status: 201 })) },
  });

  it('dead-letters the named rows and delivers the others at once, without spending a retry', async () => {
    const bad = new Set(['msg-1', 'msg-3']);
    const vendor = strictVendor('linkedin', bad, refuseNamed, accept);

    const report = await send('linkedin', 5);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.map((r) => r.events)).toEqual([5, 3]);
    expect(byId(report).get('msg-1')).toMatchObject({
      detail: '/conversionHappenedAt :: must be within 90 days',
    });
  });

  it('a 422 whose message names no row: halved until the bad row is alone', async () => {
    const bad = new Set(['msg-2']);
    const vendor = strictVendor(
      'linkedin',
      bad,
      () => ({ status: 422, body: { status: 422, message: 'Unprocessable entity' } }),
      accept,
    );

    const report = await send('linkedin', 4);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.length).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(4)) + 1);
  });

  it('a follow-up the vendor cannot take (503) is a real retry for the rest', async () => {
    let calls = 0;
    sink.reply((request) => {
      calls += 1;
      if (calls === 1) {
        const position = idsOf('linkedin', request).indexOf('msg-0');
        return refuseNamed([position]);
      }
      return { status: 503, headers: { 'retry-after': '30' } };
    });

    const report = await send('linkedin', 3);

    expect(report.requests).toHaveLength(2);
    expect(report.outcomes[0]).toMatchObject({ kind: 'dead_letter', reason: 'validation_failed' });
    for (const outcome of report.outcomes.slice(1)) {
      expect(outcome).toMatchObject({ kind: 'retry', reason: 'vendor_unavailable', retryAfterMs: 30_000 });
    }
  });
});

describe('Pinterest: 422 with every event’s status, or a 400 that names none', () => {
  const accept = (count: number): Reply => ({
    status: 200,
    body: {
      num_events_received: count,
      num_events_processed: count,
      events: Array.from({ length: count }, () => ({ status: 'processed', error_message: '' })),
    },
  });

  it('dead-letters the failed events of a 422 and sends the others again at once, without them', async () => {
    const bad = new Set(['msg-2', 'msg-4']);
    const vendor = strictVendor(
      'pinterest',
      bad,
      (positions, request) => {
        const count = rowsOf('pinterest', request.body).length;
        return {
          status: 422,
          body: {
            num_events_received: count,
            num_events_processed: 0,
            events: Array.from({ length: count }, (_, i) =>
              positions.includes(i)
                ? { status: 'failed', error_message: 'event_time is more than 7 days old' }
                : { status: 'processed', error_message: '' },
            ),
          },
        };
      },
      accept,
    );

    const report = await send('pinterest', 6);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.map((r) => r.events)).toEqual([6, 4]);
    expect(byId(report).get('msg-2')).toMatchObject({
      detail: 'event_time is more than 7 days old',
      lastResponse: { status: 422 },
    });
  });

  it('a 422 that says it processed the others: those count as delivered, nothing is sent twice', async () => {
    const bad = new Set(['msg-1']);
    let requests = 0;
    sink.reply((request) => {
      requests += 1;
      const ids = idsOf('pinterest', request);
      return {
        status: 422,
        body: {
          num_events_received: ids.length,
          num_events_processed: ids.length - 1,
          events: ids.map((id) =>
            bad.has(id)
              ? { status: 'failed', error_message: 'invalid event_time' }
              : { status: 'processed', error_message: '' },
          ),
        },
      };
    });

    const report = await send('pinterest', 4);

    expect(requests).toBe(1);
    expect(report.outcomes.map((o) => [o.messageId, o.kind])).toEqual([
      ['msg-0', 'delivered'],
      ['msg-1', 'dead_letter'],
      ['msg-2', 'delivered'],
      ['msg-3', 'delivered'],
    ]);
  });

  it('a 400 that names no event: halved until the bad one is alone', async () => {
    const bad = new Set(['msg-5']);
    const vendor = strictVendor(
      'pinterest',
      bad,
      () => ({ status: 400, body: { code: 1, message: 'Invalid parameters.' } }),
      accept,
    );

    const report = await send('pinterest', 8);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.length).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(8)) + 1);
  });

  it('a refusal of the request itself (every request refused) dead-letters the batch within the budget', async () => {
    sink.reply(() => ({ status: 400, body: { code: 2, message: 'Invalid ad account id.' } }));

    const report = await send('pinterest', 8);

    expect(report.requests.length).toBeLessThanOrEqual(1 + budget(8));
    for (const outcome of report.outcomes) {
      expect(outcome).toMatchObject({ kind: 'dead_letter', reason: 'validation_failed' });
    }
  });
});

describe('Snap: status INVALID (or 400) for the whole request, without naming the event', () => {
  const accept = (): Reply => ({ status: 200, body: { status: 'VALID', reason: '' } });

  it('halves the batch until the bad event is alone; every other event is delivered once', async () => {
    const bad = new Set(['msg-3']);
    const vendor = strictVendor(
      'snapchat',
      bad,
      () => ({ status: 200, body: { status: 'INVALID', reason: 'invalid event_time' } }),
      accept,
    );

    const report = await send('snapchat', 7);

    expectIsolated(report, bad, vendor.accepted);
    expect(report.requests.length).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(7)) + 1);
    expect(byId(report).get('msg-3')).toMatchObject({ detail: 'Snap status INVALID' });
  });

  it('a 400 for one event: the others are delivered', async () => {
    const bad = new Set(['msg-0']);
    const vendor = strictVendor(
      'snapchat',
      bad,
      () => ({ status: 400, body: { status: 'INVALID', reason: 'bad request' } }),
      accept,
    );

    const report = await send('snapchat', 5);

    expectIsolated(report, bad, vendor.accepted);
  });
});
