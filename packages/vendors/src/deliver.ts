import type { CanonicalEvent } from '@signal/events';
import {
  type Logger,
  request,
  silentLogger,
  type VendorRequest,
  type VendorRequestResult,
} from '@signal/http';
import { createVendorNormalizer, type VendorNormalizerOptions } from '@signal/pii';
import type { Dispatcher } from 'undici';
import type {
  AdapterContext,
  BuiltRequest,
  PreparedEvent,
  VendorAdapter,
  VendorAdapterId,
  VendorLimits,
} from './adapter';
import { type Judgement, settleBatch } from './batch-refusal';
import { splitBatches } from './batching';
import { classifyNetworkError, classifyStatus, shared } from './classify-http';
import { VendorConfigError } from './errors';
import { checkEventTime } from './guards';
import type { CapturedResponse, DeliveryOutcome, FinalVerdict, Verdict } from './outcome';
import { captureResponse, createRedactor, MAX_DETAIL, type Redactor, scrub, secretStrings } from './redact';

/** Sends one request and answers with a value, never throwing for network errors (`@signal/http` `request`). */
export type SendRequest = (request: VendorRequest) => Promise<VendorRequestResult>;

/** How requests leave: a strict-TLS undici Dispatcher (`createVendorDispatcher`), or a send function. */
export type Transport = { readonly dispatcher: Dispatcher } | { readonly send: SendRequest };

export interface IntegrationConfig {
  /** Non-secret settings as stored (validated here with the adapter's schema). */
  readonly settings: unknown;
  /** Decrypted credentials, held in memory only. */
  readonly credentials: unknown;
  /** Variants of the vendor's PII profile (Google e-mail rule, Pinterest rules, Snap calling code). */
  readonly pii?: VendorNormalizerOptions;
}

export interface DeliverOptions {
  readonly transport: Transport;
  /** Clock, Unix ms. Default `Date.now`. */
  readonly now?: () => number;
  /** Aborts in-flight requests (graceful shutdown): those events come back as `retry`. */
  readonly signal?: AbortSignal;
  /**
   * Deadline for each request as a whole (connect, send, headers and the full body), also used as its header
   * and body idle timeout. Passed on as `VendorRequest.timeoutMs`, which `@signal/http` `request` enforces
   * (a `send` transport of its own must honour it too); a request that runs over comes back as `retry`
   * `timeout`.
   */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

/** One request that was made: for `signal_delivery_duration_seconds` and logs (no URL secrets, no body). */
export interface RequestRecord {
  readonly events: number;
  readonly durationMs: number;
  readonly status?: number;
  readonly errorCode?: string;
}

export interface DeliveryReport {
  /** One outcome per input event, in input order. */
  readonly outcomes: readonly DeliveryOutcome[];
  readonly requests: readonly RequestRecord[];
}

/** An adapter bound to one integration's validated settings, credentials and compiled PII profile. */
export interface Integration {
  readonly vendor: VendorAdapterId;
  readonly limits: VendorLimits;
  /** Guards, maps, batches, sends and classifies. Never throws for vendor or network failures. */
  deliver(events: readonly CanonicalEvent[], options: DeliverOptions): Promise<DeliveryReport>;
}

function issuesOf(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string[] {
  return error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
}

/**
 * Validates settings and credentials once and compiles what every delivery reuses (PII profile, limits,
 * the secret scrubber). Throws `VendorConfigError` (codes `vendor.invalid_settings` /
 * `vendor.invalid_credentials`) or `PiiConfigError`; messages never contain credential values.
 */
export function createIntegration<S, C>(
  adapter: VendorAdapter<S, C>,
  config: IntegrationConfig,
): Integration {
  const settings = adapter.settingsSchema.safeParse(config.settings);
  if (!settings.success) {
    throw new VendorConfigError('vendor.invalid_settings', adapter.id, issuesOf(settings.error));
  }
  const credentials = adapter.credentialsSchema.safeParse(config.credentials);
  if (!credentials.success) {
    throw new VendorConfigError('vendor.invalid_credentials', adapter.id, issuesOf(credentials.error));
  }
  const normalizer = createVendorNormalizer(adapter.piiProfile(settings.data), config.pii);
  const limits = Object.freeze(adapter.limits(settings.data));
  const redact = createRedactor(secretStrings(credentials.data));
  const bound: Bound<S, C> = {
    adapter,
    settings: settings.data,
    credentials: credentials.data,
    normalizer,
    limits,
    redact,
  };
  return {
    vendor: adapter.id,
    limits,
    deliver: (events, options) => run(bound, events, options),
  };
}

/** One-shot form: `createIntegration(adapter, config).deliver(events, options)`. */
export function deliver<S, C>(
  adapter: VendorAdapter<S, C>,
  events: readonly CanonicalEvent[],
  options: DeliverOptions & IntegrationConfig,
): Promise<DeliveryReport> {
  return createIntegration(adapter, options).deliver(events, options);
}

interface Bound<S, C> {
  readonly adapter: VendorAdapter<S, C>;
  readonly settings: S;
  readonly credentials: C;
  readonly normalizer: AdapterContext<S, C>['normalizer'];
  readonly limits: VendorLimits;
  readonly redact: Redactor;
}

function sender(transport: Transport): SendRequest {
  if ('send' in transport) return transport.send;
  const { dispatcher } = transport;
  return (req) => request(dispatcher, req);
}

async function run<S, C>(
  bound: Bound<S, C>,
  events: readonly CanonicalEvent[],
  options: DeliverOptions,
): Promise<DeliveryReport> {
  const { adapter, limits, redact } = bound;
  const logger = options.logger ?? silentLogger;
  const now = (options.now ?? Date.now)();
  const ctx: AdapterContext<S, C> = {
    settings: bound.settings,
    credentials: bound.credentials,
    normalizer: bound.normalizer,
    now,
  };
  const outcomes: (DeliveryOutcome | undefined)[] = new Array(events.length);
  const prepared: PreparedEvent[] = [];
  const origin: number[] = [];

  events.forEach((event, index) => {
    const { messageId } = event;
    let preparation: ReturnType<typeof adapter.prepare>;
    try {
      preparation = adapter.prepare(event, ctx);
    } catch (cause) {
      logger.error({ vendor: adapter.id, messageId, err: errorName(cause) }, 'vendor mapping threw');
      outcomes[index] = { kind: 'dead_letter', messageId, reason: 'mapping_failed' };
      return;
    }
    if (!preparation.ok) {
      outcomes[index] =
        preparation.kind === 'dropped'
          ? { kind: 'dropped', messageId, reason: preparation.reason, detail: preparation.detail }
          : { kind: 'dead_letter', messageId, reason: preparation.reason, detail: preparation.detail };
      return;
    }
    const time = checkEventTime(event, limits, now);
    if (!time.ok) {
      outcomes[index] = { kind: 'dead_letter', messageId, reason: time.reason, detail: time.detail };
      return;
    }
    const bytes = Buffer.byteLength(JSON.stringify(preparation.payload));
    if (bytes > limits.maxEventBytes) {
      outcomes[index] = {
        kind: 'dead_letter',
        messageId,
        reason: 'payload_too_large',
        detail: `mapped event is ${bytes} bytes; this vendor accepts ${limits.maxEventBytes}`,
      };
      return;
    }
    prepared.push({ event, payload: preparation.payload, bytes, batchKey: preparation.batchKey ?? '' });
    origin.push(index);
  });

  const send = sender(options.transport);
  const requests: RequestRecord[] = [];
  for (const indices of splitBatches(prepared, limits)) {
    const batch = indices.flatMap((i) => prepared[i] ?? []);
    const first = requests.length;
    // A vendor that refuses the whole request for some of its rows gets follow-ups without them (bounded).
    const settled = await settleBatch(batch.length, (rows) =>
      attempt(
        bound,
        ctx,
        rows.flatMap((row) => batch[row] ?? []),
        send,
        options,
        logger,
        requests,
      ),
    );
    if (requests.length - first > 1) {
      logger.info(
        { vendor: adapter.id, events: batch.length, requests: requests.length - first },
        'vendor refused a batch because of some of its events; the others went in follow-up requests',
      );
    }
    indices.forEach((preparedIndex, position) => {
      const index = origin[preparedIndex];
      const entry = prepared[preparedIndex];
      const row = settled[position];
      if (index === undefined || entry === undefined || row === undefined) return;
      outcomes[index] = toOutcome(entry.event.messageId, row.verdict, row.lastResponse, redact);
    });
  }

  return {
    outcomes: outcomes.map(
      (outcome, index): DeliveryOutcome =>
        outcome ?? {
          kind: 'dead_letter',
          messageId: events[index]?.messageId ?? '',
          reason: 'mapping_failed',
        },
    ),
    requests,
  };
}

async function attempt<S, C>(
  bound: Bound<S, C>,
  ctx: AdapterContext<S, C>,
  batch: readonly PreparedEvent[],
  send: SendRequest,
  options: DeliverOptions,
  logger: Logger,
  requests: RequestRecord[],
): Promise<Judgement> {
  const { adapter } = bound;
  let built: BuiltRequest;
  try {
    built = adapter.buildRequest(batch, ctx);
  } catch (cause) {
    logger.error(
      { vendor: adapter.id, events: batch.length, err: errorName(cause) },
      'vendor request build threw',
    );
    return {
      list: shared({ kind: 'dead_letter', reason: 'mapping_failed' }, batch.length),
      lastResponse: undefined,
    };
  }

  const started = performance.now();
  let result: VendorRequestResult;
  try {
    result = await send({
      url: built.url,
      method: built.method,
      headers: built.headers,
      body: built.body,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      // A deadline for the whole exchange, not only undici's idle timeouts: a vendor trickling its answer
      // must not hold the worker's partition longer than `timeoutMs`.
      ...(options.timeoutMs === undefined
        ? {}
        : {
            timeoutMs: options.timeoutMs,
            headersTimeoutMs: options.timeoutMs,
            bodyTimeoutMs: options.timeoutMs,
          }),
    });
  } catch (cause) {
    // The transport contract is to answer with values; a throwing one is treated as an unknown network error.
    result = {
      type: 'network_error',
      ok: false,
      error: { kind: 'unknown', code: 'TRANSPORT_THREW', message: errorName(cause), retryable: true },
    };
  }
  const durationMs = performance.now() - started;
  const record: RequestRecord =
    result.type === 'response'
      ? { events: batch.length, durationMs, status: result.status }
      : { events: batch.length, durationMs, errorCode: result.error.code };
  requests.push(record);

  let list: readonly Verdict[];
  try {
    list = adapter.classify(result, batch, ctx);
    // One verdict per row; and a request where every row is `resend` blames no row, so nothing would change.
    if (list.length !== batch.length || list.every((v) => v.kind === 'resend')) {
      list = fallback(result, batch.length, ctx.now);
    }
  } catch (cause) {
    logger.error({ vendor: adapter.id, err: errorName(cause) }, 'vendor classification threw');
    list = fallback(result, batch.length, ctx.now);
  }

  const log = { vendor: adapter.id, url: built.logUrl, ...record };
  if (list.some((v) => v.kind === 'dead_letter' && v.reason === 'auth_failed')) {
    logger.warn(log, 'vendor refused the integration credentials');
  } else {
    logger.debug(log, 'vendor request done');
  }
  const failed = list.some((v) => v.kind !== 'delivered');
  return { list, lastResponse: failed ? captureResponse(result, bound.redact) : undefined };
}

function fallback(result: VendorRequestResult, count: number, now: number): Verdict[] {
  return shared(
    result.type === 'response' ? classifyStatus(result, now) : classifyNetworkError(result.error),
    count,
  );
}

function toOutcome(
  messageId: string,
  verdict: FinalVerdict,
  lastResponse: CapturedResponse | undefined,
  redact: Redactor,
): DeliveryOutcome {
  if (verdict.kind === 'delivered') return { kind: 'delivered', messageId };
  const detail = scrub(verdict.detail, redact, MAX_DETAIL);
  const extra = {
    ...(detail === undefined ? {} : { detail }),
    ...(lastResponse === undefined ? {} : { lastResponse }),
  };
  return verdict.kind === 'retry'
    ? {
        kind: 'retry',
        messageId,
        reason: verdict.reason,
        ...(verdict.retryAfterMs === undefined ? {} : { retryAfterMs: verdict.retryAfterMs }),
        ...extra,
      }
    : { kind: 'dead_letter', messageId, reason: verdict.reason, ...extra };
}

/** The class of a thrown value, never its message (which could quote event data). */
function errorName(cause: unknown): string {
  return cause instanceof Error ? cause.name : typeof cause;
}
