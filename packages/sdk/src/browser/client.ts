import { captureClickIds, clickIdContext, forgetClickIds } from './click-ids';
import type { ConsentReader, ExplicitConsent } from './consent';
import { cleanCategories, createConsentReader, stillChosen } from './consent';
import { deviceContext, pageContext } from './context';
import { crossDomainLinker, RESOLVE_TIMEOUT_MS } from './cross-domain';
import type { Queue } from './queue';
import { createQueue } from './queue';
import type { KeyValueStore } from './storage';
import { isRecord, parseJson, webStore } from './storage';
import { MAX_BATCH } from './transport';
import type {
  ConsentCategories,
  CrossDomainContext,
  CrossDomainOptions,
  DataflyApi,
  DataflyOptions,
  EventBody,
  EventType,
  Logger,
  Properties,
} from './types';
import { uuid } from './uuid';
import { VERSION } from './version';

const ANONYMOUS_ID_KEY = 'df.aid';
const USER_ID_KEY = 'df.uid';
const CONSENT_KEY = 'df.consent';
const IDENTIFIER = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;
const PIPELINE_KEY = /^dk_(live|test)_[\x21-\x7e]+$/;

export type DataflyErrorCode = 'invalid_options';

/** Thrown by `init` for a configuration the SDK cannot run with; tracking calls never throw. */
export class DataflyError extends Error {
  readonly code: DataflyErrorCode;
  constructor(code: DataflyErrorCode, message: string) {
    super(message);
    this.name = 'DataflyError';
    this.code = code;
  }
}

interface Settings {
  readonly pipelineKey: string;
  readonly endpoint: string;
  readonly batchSize: number;
  readonly flushInterval: number;
  readonly maxQueueSize: number;
  readonly autoPage: boolean;
  readonly waitForConsent: number;
  readonly crossDomain: CrossDomainOptions | undefined;
  readonly logger: Logger | undefined;
}

function integer(value: unknown, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DataflyError('invalid_options', `${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Options are checked once, here; the hot path only reads the result. */
function settle(options: DataflyOptions, defaultEndpoint: string | undefined): Settings {
  if (
    !isRecord(options) ||
    typeof options.pipelineKey !== 'string' ||
    !PIPELINE_KEY.test(options.pipelineKey)
  ) {
    throw new DataflyError('invalid_options', 'pipelineKey must be a pipeline key (dk_live_… or dk_test_…)');
  }
  let endpoint: URL;
  try {
    endpoint = new URL(options.endpoint ?? defaultEndpoint ?? '');
  } catch {
    throw new DataflyError(
      'invalid_options',
      'endpoint must be an absolute http(s) URL (the gateway origin)',
    );
  }
  if (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:') {
    throw new DataflyError(
      'invalid_options',
      'endpoint must be an absolute http(s) URL (the gateway origin)',
    );
  }
  const cross = options.crossDomain;
  if (cross !== undefined && (!isRecord(cross) || !Array.isArray(cross.linkedDomains))) {
    throw new DataflyError('invalid_options', 'crossDomain.linkedDomains must be an array of host names');
  }
  return {
    pipelineKey: options.pipelineKey,
    endpoint: (endpoint.origin + endpoint.pathname).replace(/\/+$/, ''),
    batchSize: integer(options.batchSize, 10, 1, MAX_BATCH, 'batchSize'),
    flushInterval: integer(options.flushInterval, 1_000, 0, 600_000, 'flushInterval'),
    maxQueueSize: integer(options.maxQueueSize, 1_000, 1, 100_000, 'maxQueueSize'),
    autoPage: options.autoPage !== false,
    waitForConsent: integer(options.waitForConsent, 0, 0, 10_000, 'waitForConsent'),
    crossDomain:
      cross === undefined
        ? undefined
        : {
            ...cross,
            linkedDomains: cross.linkedDomains
              .filter((d): d is string => typeof d === 'string' && d !== '')
              .map((d) => d.toLowerCase()),
          },
    logger: options.logger,
  };
}

function validId(value: unknown): string | undefined {
  const id = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  return typeof id === 'string' && IDENTIFIER.test(id) ? id : undefined;
}

/** Do Not Track / Global Privacy Control, when the page asked the SDK to honour them. */
function optedOut(win: Window, options: DataflyOptions): boolean {
  const nav = win.navigator as Navigator & { globalPrivacyControl?: unknown };
  const dnt = nav.doNotTrack ?? (win as unknown as { doNotTrack?: unknown }).doNotTrack;
  return (
    (options.respectDoNotTrack === true && dnt === '1') ||
    (options.respectGpc === true && nav.globalPrivacyControl === true)
  );
}

type Call = readonly [method: string, args: readonly unknown[], at: Date];

interface Running {
  readonly settings: Settings;
  readonly queue: Queue;
  readonly consent: ConsentReader;
  readonly local: KeyValueStore;
  readonly session: KeyValueStore;
  clickIds: Record<string, string>;
  anonymousId: string;
  userId: string | undefined;
  explicitConsent: ExplicitConsent | null;
  readonly detach: (() => void)[];
}

/**
 * One SDK instance bound to a window. Calls made before `init` wait in memory (with the time they were made)
 * and run once `init` has set the SDK up; after an opt-out (DNT/GPC honoured) or `shutdown`, calls do nothing
 * and nothing is stored.
 */
export function createClient(win: Window, defaults: { endpoint?: string } = {}): DataflyApi {
  // `arriving`: started, but calls wait (in order, with their times) until an incoming identity is resolved.
  let state: 'waiting' | 'arriving' | 'running' | 'off' = 'waiting';
  let arrival: Promise<void> = Promise.resolve();
  let run: Running | undefined;
  let waiting: Call[] = [];
  /** `consent()` calls applied ahead of the events that waited for them, with the categories they left. */
  const applied = new Map<readonly unknown[], ConsentCategories>();
  /** Ends a wait for consent (a `consent()` call came). */
  let wake = (): void => {};

  function warn(obj: object, msg: string): void {
    run?.settings.logger?.warn(obj, msg);
  }

  function setAnonymousId(r: Running, id: string): void {
    r.anonymousId = id;
    r.local.set(ANONYMOUS_ID_KEY, id);
  }

  function enqueue(
    r: Running,
    type: EventType,
    at: Date,
    fields: { event?: string; groupId?: string; properties?: Properties; traits?: Properties },
  ): void {
    const consent = r.consent.read(r.explicitConsent);
    const body: EventBody = {
      type,
      anonymousId: r.anonymousId,
      messageId: uuid(),
      properties: fields.properties ?? {},
      traits: fields.traits ?? {},
      context: {
        ...deviceContext(win),
        page: pageContext(win),
        consent,
        library: { name: 'datafly.js', version: VERSION },
      },
      timestamp: at.toISOString(),
    };
    if (fields.event !== undefined) body.event = fields.event;
    if (r.userId !== undefined) body.userId = r.userId;
    if (fields.groupId !== undefined) body.groupId = fields.groupId;
    const clickIds = clickIdContext(r.clickIds);
    if (clickIds !== undefined) body.context.clickIds = clickIds;
    r.queue.push(body);
  }

  /** Records a `consent()` choice; returns the categories chosen so far. */
  function applyConsent(r: Running, categories: unknown): ConsentCategories {
    // Earlier choices the CMP has overruled since are dropped, not re-dated by this call.
    const seen = r.consent.seen();
    r.explicitConsent = {
      c: { ...stillChosen(r.explicitConsent, seen), ...cleanCategories(categories) },
      s: seen,
    };
    r.local.set(CONSENT_KEY, JSON.stringify(r.explicitConsent));
    return r.explicitConsent.c;
  }

  /** Whether anything tells the visitor's consent: a choice, a CMP's cookie, a TC or GPP string. */
  function consentKnown(r: Running): boolean {
    const c = r.consent.read(r.explicitConsent);
    return c.categories !== undefined || c.tcf !== undefined || c.gpp !== undefined;
  }

  function props(value: unknown): Properties {
    return isRecord(value) ? value : {};
  }

  /** The tracking calls, run against a started SDK; `at` is when the page made the call. */
  function perform(r: Running, method: string, args: readonly unknown[], at: Date): void {
    const [a, b] = args;
    switch (method) {
      case 'track':
        if (typeof a !== 'string' || a === '' || a.length > 256) {
          warn({ method }, 'datafly: track needs an event name of 1-256 characters');
          return;
        }
        enqueue(r, 'track', at, { event: a, properties: props(b) });
        return;
      case 'page': {
        const page = pageContext(win);
        const properties: Properties = { ...page, ...props(a) };
        const name = properties.name;
        enqueue(
          r,
          'page',
          at,
          typeof name === 'string' && name !== ''
            ? { event: name.slice(0, 256), properties }
            : { properties },
        );
        return;
      }
      case 'identify': {
        const userId = validId(a);
        if (userId === undefined && a !== undefined && a !== null) {
          warn({ method }, 'datafly: identify needs a user id of 1-256 printable characters');
          return;
        }
        if (userId !== undefined) {
          r.userId = userId;
          r.local.set(USER_ID_KEY, userId);
        }
        enqueue(r, 'identify', at, { traits: props(b) });
        return;
      }
      case 'group': {
        const groupId = validId(a);
        if (groupId === undefined) {
          warn({ method }, 'datafly: group needs a group id of 1-256 printable characters');
          return;
        }
        enqueue(r, 'group', at, { groupId, traits: props(b) });
        return;
      }
      case 'consent': {
        const categories = applied.get(args) ?? applyConsent(r, a);
        enqueue(r, 'track', at, { event: 'consent_update', properties: { categories } });
        return;
      }
      case 'reset':
        r.userId = undefined;
        r.local.remove(USER_ID_KEY);
        setAnonymousId(r, uuid());
        forgetClickIds(r.session);
        r.clickIds = {};
        return;
      default:
        warn({ method }, 'datafly: unknown method');
    }
  }

  function call(method: string, args: readonly unknown[]): void {
    if (state === 'running' && run !== undefined) perform(run, method, args, new Date());
    else if (state === 'waiting' || state === 'arriving') {
      waiting.push([method, args, new Date()]);
      if (method === 'consent') wake();
    }
  }

  function listen(
    r: Running,
    target: EventTarget,
    type: string,
    handler: (event: Event) => void,
    capture = false,
  ): void {
    target.addEventListener(type, handler, capture);
    r.detach.push(() => target.removeEventListener(type, handler, capture));
  }

  function crossDomainContext(r: Running): CrossDomainContext {
    return { anonymousId: r.anonymousId, pipelineKey: r.settings.pipelineKey, endpoint: r.settings.endpoint };
  }

  /** Hands clicks on links to linked domains to the `decorateLink` extension, before the browser navigates. */
  function decorateLinks(r: Running, cross: CrossDomainOptions): void {
    const decorate = cross.decorateLink;
    if (decorate === undefined || cross.linkedDomains.length === 0) return;
    const onClick = (event: Event): void => {
      const target = event.target;
      const anchor = target instanceof Element ? target.closest('a[href]') : null;
      if (!(anchor instanceof HTMLAnchorElement)) return;
      let url: URL;
      try {
        url = new URL(anchor.href, win.location.href);
      } catch {
        return;
      }
      const host = url.hostname.toLowerCase();
      const linked = cross.linkedDomains.some((d) => host === d || host.endsWith(`.${d}`));
      if (!linked || host === win.location.hostname.toLowerCase() || !/^https?:$/.test(url.protocol)) return;
      try {
        const next = decorate(url, crossDomainContext(r), { event: event as MouseEvent, anchor });
        if (next !== undefined) anchor.href = String(next);
      } catch (error) {
        warn({ error: String(error) }, 'datafly: decorateLink failed');
      }
    };
    listen(r, win.document, 'click', onClick, true);
    listen(r, win.document, 'auxclick', onClick, true);
  }

  function start(options: DataflyOptions): void {
    if (state !== 'waiting') {
      warn({}, 'datafly: init called twice; the first configuration stays');
      return;
    }
    if (optedOut(win, options)) {
      state = 'off';
      waiting = [];
      return;
    }
    const settings = settle(options, defaults.endpoint);
    const local = webStore('localStorage');
    const session = webStore('sessionStorage');
    const storedConsent = parseJson(local.get(CONSENT_KEY));
    const r: Running = {
      settings,
      local,
      session,
      queue: createQueue({
        pipelineKey: settings.pipelineKey,
        url: `${settings.endpoint}/v1/batch`,
        batchSize: settings.batchSize,
        flushInterval: settings.flushInterval,
        maxQueueSize: settings.maxQueueSize,
        store: local,
        logger: settings.logger,
      }),
      consent: createConsentReader(win),
      clickIds: captureClickIds(win.location.search, session),
      anonymousId: validId(local.get(ANONYMOUS_ID_KEY)) ?? uuid(),
      userId: validId(local.get(USER_ID_KEY)),
      explicitConsent: storedExplicitConsent(storedConsent),
      detach: [],
    };
    local.set(ANONYMOUS_ID_KEY, r.anonymousId);
    run = r;
    state = 'arriving';
    if (settings.autoPage) waiting.push(['page', [], new Date()]);

    // A `consent()` call made before `init` (the snippet's stub queue) is an answer already.
    const holdForConsent =
      settings.waitForConsent > 0 && !consentKnown(r) && !waiting.some(([method]) => method === 'consent');
    /** Runs what waited (calls made before `init` and while arriving, then the page view) and goes live. */
    const begin = (): void => {
      if (state !== 'arriving') return;
      state = 'running';
      const replay = waiting;
      waiting = [];
      // Events held for consent carry the consent decided by their release, `consent()` calls included.
      if (holdForConsent) {
        for (const [method, args] of replay)
          if (method === 'consent') applied.set(args, applyConsent(r, args[0]));
      }
      for (const [method, args, at] of replay) perform(r, method, args, at);
      applied.clear();
    };

    listen(r, win, 'pagehide', () => {
      begin();
      r.queue.unload();
    });
    // Hidden is the last moment a mobile page is sure to see, but not an exit: send what waits now with a
    // keepalive fetch (it outlives the page, and its answer, if the page lives, spares a second send).
    listen(r, win.document, 'visibilitychange', () => {
      if (win.document.visibilityState !== 'hidden') return;
      begin();
      void r.queue.flush();
    });
    listen(r, win, 'pageshow', (event) => {
      if ((event as PageTransitionEvent).persisted) r.queue.reclaim();
    });
    listen(r, win, 'online', () => r.queue.online());

    const given = settings.crossDomain;
    let arrived: unknown;
    if (given !== undefined) {
      const linker = crossDomainLinker(win, given.linkedDomains);
      const cross = {
        ...given,
        decorateLink: given.decorateLink ?? linker.decorateLink,
        onArrival: given.onArrival ?? linker.onArrival,
      };
      decorateLinks(r, cross);
      try {
        arrived = cross.onArrival(new URL(win.location.href), {
          ...crossDomainContext(r),
          setAnonymousId: (id: string) => {
            const valid = validId(id);
            if (valid !== undefined) setAnonymousId(r, valid);
          },
        });
      } catch (error) {
        warn({ error: String(error) }, 'datafly: onArrival failed');
      }
    }
    const waits: Promise<unknown>[] = [];
    if (arrived instanceof Promise) {
      // The first events wait for the arriving identity, so they already carry it (at most 3 s; leaving the
      // page earlier sends them at once).
      waits.push(
        Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, RESOLVE_TIMEOUT_MS))]).catch(
          () => undefined,
        ),
      );
    }
    if (holdForConsent) {
      // CMPs answer through cookies and callbacks at their own pace: look every 100 ms until one has.
      waits.push(
        new Promise<void>((resolve) => {
          const until = Date.now() + settings.waitForConsent;
          const timer = setInterval(() => {
            if (Date.now() >= until || consentKnown(r)) wake();
          }, 100);
          wake = () => {
            clearInterval(timer);
            resolve();
          };
        }),
      );
    }
    if (waits.length > 0) arrival = Promise.all(waits).then(begin);
    else begin();
  }

  const api: DataflyApi = {
    init: start,
    track: (event, properties) => call('track', [event, properties]),
    page: (properties) => call('page', [properties]),
    identify: (userId, traits) => call('identify', [userId, traits]),
    group: (groupId, traits) => call('group', [groupId, traits]),
    reset: () => call('reset', []),
    consent: (categories) => call('consent', [categories]),
    flush: () =>
      state === 'arriving'
        ? arrival.then(() => api.flush())
        : state === 'running' && run !== undefined
          ? run.queue.flush()
          : Promise.resolve(),
    anonymousId: () => run?.anonymousId,
    push(entry) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') return;
      const [method, ...args] = entry as [string, ...unknown[]];
      if (method === 'init') start(args[0] as DataflyOptions);
      else if (method === 'flush') void api.flush();
      else call(method, args);
    },
    shutdown() {
      if (run !== undefined) {
        for (const detach of run.detach) detach();
        run.queue.stop();
      }
      state = 'off';
      waiting = [];
    },
  };
  return api;
}

/** A stored `consent()` choice: `{c, s}`, or the bare categories stored by earlier versions. */
function storedExplicitConsent(stored: unknown): ExplicitConsent | null {
  if (!isRecord(stored)) return null;
  if (!isRecord(stored.c)) return { c: cleanCategories(stored) };
  return isRecord(stored.s)
    ? { c: cleanCategories(stored.c), s: cleanCategories(stored.s) }
    : { c: cleanCategories(stored.c) };
}
