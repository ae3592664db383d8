/**
 * The public shapes of Datafly.js: the options a page passes, the API it calls and the event body it sends.
 * The body mirrors `eventInputSchema` in `@signal/events` (the gateway's contract); a test validates real
 * payloads against that schema so the two cannot drift apart.
 */

export type EventType = 'track' | 'page' | 'identify' | 'group';

export type ConsentCategory = 'essential' | 'functional' | 'analytics' | 'marketing' | 'personalization';
export type ConsentCategories = Partial<Record<ConsentCategory, boolean>>;

/** Free-form event data; anything JSON can express (other values are dropped or stringified by JSON). */
export type Properties = Record<string, unknown>;

/** What the page's consent tools said when the event happened. Raw IAB strings are decoded server-side. */
export interface ConsentContext {
  categories?: ConsentCategories;
  /** IAB TCF v2 TC string (from `__tcfapi`, else the `euconsent-v2` cookie). */
  tcf?: string;
  /** IAB GPP string and its applicable section ids (from `__gpp`). */
  gpp?: string;
  gppSid?: number[];
  /** IAB US Privacy string (`usprivacy` cookie), e.g. `1YNN`. */
  usPrivacy?: string;
  /** `navigator.globalPrivacyControl`. */
  gpc?: boolean;
  /** Where `categories` came from: `api` (a `consent()` call), `onetrust` or `cookiebot`. */
  cmp?: string;
}

export interface PageContext {
  url: string;
  referrer?: string;
  title?: string;
  path?: string;
  search?: string;
}

export interface EventContext {
  userAgent?: string;
  page: PageContext;
  consent: ConsentContext;
  library: { name: 'datafly.js'; version: string };
  locale?: string;
  timezone?: string;
  screen?: { width: number; height: number; density: number };
  /** Advertising click ids from the landing URL (kept for the session) and first-party vendor cookies. */
  clickIds?: Record<string, string>;
}

/** One event as it goes on the wire (an element of `/v1/batch`'s `batch`). */
export interface EventBody {
  type: EventType;
  event?: string;
  userId?: string;
  anonymousId: string;
  groupId?: string;
  /** UUID v4, the idempotency key end to end: a resent event keeps it and the pipeline deduplicates. */
  messageId: string;
  properties: Properties;
  traits: Properties;
  context: EventContext;
  /** ISO 8601 (UTC), taken when the page made the call. */
  timestamp: string;
}

/** A pino-compatible slice; the SDK never logs unless the page gives it one. */
export interface Logger {
  warn(obj: object, msg: string): void;
}

/** What a cross-domain extension may use (the Identity Hub's linker fills these hooks in). */
export interface CrossDomainContext {
  readonly anonymousId: string;
  readonly pipelineKey: string;
  readonly endpoint: string;
}

/** The click a `decorateLink` call is about: the event (still cancellable) and the link. */
export interface LinkClick {
  readonly event: MouseEvent;
  readonly anchor: HTMLAnchorElement;
}

export interface CrossDomainOptions {
  /**
   * Sites (host names) that share this visitor's identity. Custom hooks see clicks to each and its
   * subdomains; the built-in Identity Hub linker acts on exact host names only, like the hub's allowlist.
   */
  linkedDomains: string[];
  /**
   * Called synchronously when the visitor clicks (or middle-clicks) a link to a linked domain, before the
   * browser navigates. Return the URL to navigate to instead (e.g. through the gateway's identity redirect),
   * or nothing to leave the link alone; `click.event.preventDefault()` lets the hook navigate itself.
   * Default: the Identity Hub linker (`crossDomainLinker`).
   */
  decorateLink?: (url: URL, context: CrossDomainContext, click?: LinkClick) => string | URL | undefined;
  /**
   * Called once at `init` with the landing URL, before the first event, so an extension can resolve an
   * incoming identity token and adopt the anonymous id it carries. A returned promise holds sending until it
   * settles (at most 3 s). Default: the Identity Hub linker.
   */
  onArrival?: (url: URL, context: CrossDomainContext & { setAnonymousId(id: string): void }) => unknown;
}

export interface DataflyOptions {
  /** `dk_live_…` or `dk_test_…`. */
  pipelineKey: string;
  /** The gateway's origin; defaults to the origin d.js was loaded from. */
  endpoint?: string;
  /** Send as soon as this many events wait (1–500, default 10). */
  batchSize?: number;
  /** Send what waits at most this many ms after it was queued (default 1000). */
  flushInterval?: number;
  /** Events kept (memory and localStorage) while the gateway cannot be reached; oldest go first (default 1000). */
  maxQueueSize?: number;
  /** Send a page view once `init` has run (default true). */
  autoPage?: boolean;
  /**
   * When nothing tells the visitor's consent yet (no `consent()` choice, no CMP cookie, TC or GPP string),
   * hold events up to this many ms for the CMP's answer or a `consent()` call, then send them with the
   * consent decided by then (0–10000, default 0: send at once, with what is known). A first visit's page view
   * then reaches the vendors the visitor accepts in the banner; leaving the page sends what waits at once.
   */
  waitForConsent?: number;
  /** Collect nothing when the browser sends Do Not Track (default false). */
  respectDoNotTrack?: boolean;
  /** Collect nothing when the browser sends Global Privacy Control (default false; GPC is always forwarded). */
  respectGpc?: boolean;
  crossDomain?: CrossDomainOptions;
  logger?: Logger;
}

export interface DataflyApi {
  init(options: DataflyOptions): void;
  track(event: string, properties?: Properties): void;
  page(properties?: Properties): void;
  identify(userId: string | null | undefined, traits?: Properties): void;
  group(groupId: string, traits?: Properties): void;
  /** Forgets the user id and session click ids and starts a new anonymous id (e.g. at log-out). */
  reset(): void;
  /** Records the visitor's choices and sends a `consent_update` event carrying them. */
  consent(categories: ConsentCategories): void;
  /** Sends what is queued now; resolves when the attempt has finished (delivered or scheduled for retry). */
  flush(): Promise<void>;
  /** The anonymous id the SDK sends (the gateway's `_dfid` cookie takes precedence server-side). */
  anonymousId(): string | undefined;
  /** The snippet's queue form: `push(['track', 'signup', {...}])`. */
  push(call: unknown): void;
  /** Removes listeners and timers; queued events stay in localStorage for the next page. */
  shutdown(): void;
}
