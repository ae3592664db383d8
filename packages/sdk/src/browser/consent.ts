import { isRecord, readCookie, safeDecode } from './storage';
import type { ConsentCategories, ConsentCategory, ConsentContext } from './types';

type Callback = (data: unknown, success: boolean) => void;
type TcfApi = (command: string, version: number, callback: Callback) => void;
type GppApi = (command: string, callback: Callback) => unknown;

/** Printable ASCII without spaces, within the gateway's bound for raw IAB strings. */
const IAB_STRING = /^[\x21-\x7e]{1,16384}$/;
const US_PRIVACY = /^[0-9][A-Za-z-]{3}$/;

export const CONSENT_CATEGORIES: readonly ConsentCategory[] = [
  'essential',
  'functional',
  'analytics',
  'marketing',
  'personalization',
];

/**
 * OneTrust's default groups. C0005 (social media) has no category of ours and personalization has no OneTrust
 * group, so both stay unknown (the server fails closed on unknown) unless the page calls `consent()`.
 */
const ONETRUST: Record<string, ConsentCategory> = {
  C0001: 'essential',
  C0002: 'analytics',
  C0003: 'functional',
  C0004: 'marketing',
};
const COOKIEBOT: Record<string, ConsentCategory> = {
  necessary: 'essential',
  preferences: 'functional',
  statistics: 'analytics',
  marketing: 'marketing',
};

function iab(value: unknown): string | undefined {
  return typeof value === 'string' && IAB_STRING.test(value) ? value : undefined;
}

/** OneTrust's `OptanonConsent` cookie is a query string whose `groups` reads `C0001:1,C0002:0,…`. */
function oneTrust(): ConsentCategories | undefined {
  const raw = readCookie('OptanonConsent');
  const groups = raw === null ? null : new URLSearchParams(raw).get('groups');
  if (!groups) return undefined;
  const out: ConsentCategories = {};
  for (const entry of groups.split(',')) {
    const [id = '', flag] = entry.split(':');
    const category = ONETRUST[id];
    if (category !== undefined && (flag === '0' || flag === '1')) out[category] = flag === '1';
  }
  return out;
}

/**
 * Cookiebot's `CookieConsent` cookie is a URL-encoded JavaScript object literal
 * (`{stamp:'…',necessary:true,preferences:false,…}`); `-1` means the visitor's region needs no consent, which
 * Cookiebot itself treats as everything accepted.
 */
function cookiebot(): ConsentCategories | undefined {
  const raw = readCookie('CookieConsent');
  if (raw === null) return undefined;
  const text = safeDecode(raw);
  const out: ConsentCategories = {};
  for (const [name, category] of Object.entries(COOKIEBOT)) {
    const match = new RegExp(`[{,]\\s*${name}\\s*:\\s*(true|false)`).exec(text);
    if (text === '-1' || match) out[category] = text === '-1' || match?.[1] === 'true';
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Keeps only known categories with boolean values (what a page passes to `consent()` is untrusted). */
export function cleanCategories(input: unknown): ConsentCategories {
  const out: ConsentCategories = {};
  if (!isRecord(input)) return out;
  for (const category of CONSENT_CATEGORIES) {
    const value = input[category];
    if (typeof value === 'boolean') out[category] = value;
  }
  return out;
}

/**
 * A `consent()` choice, and what the CMP said per category when it was made (`s`, from `seen()`; absent in
 * choices stored by earlier versions).
 */
export interface ExplicitConsent {
  readonly c: ConsentCategories;
  readonly s?: ConsentCategories;
}

/**
 * The categories of a `consent()` choice that are still the latest word: those the CMP has not changed since
 * the choice was made (all of them for a choice stored without the CMP's state).
 */
export function stillChosen(
  explicit: ExplicitConsent | null,
  cmpNow: ConsentCategories | undefined,
): ConsentCategories {
  const out: ConsentCategories = {};
  for (const k of CONSENT_CATEGORIES) {
    const value = explicit?.c[k];
    const was = explicit?.s?.[k];
    if (value !== undefined && (explicit?.s === undefined || cmpNow?.[k] === undefined || cmpNow[k] === was))
      out[k] = value;
  }
  return out;
}

export interface ConsentReader {
  /**
   * The consent state right now. The later choice wins, per category: `explicit` (from `consent()`) over the
   * CMP state it was made against, the CMP over an `explicit` choice it has changed since (a withdrawal in the
   * CMP after `consent({marketing: true})` is a withdrawal).
   */
  read(explicit: ExplicitConsent | null): ConsentContext;
  /** What the CMP says now, per category, to store with a `consent()` choice. */
  seen(): ConsentCategories;
}

/**
 * Reads the page's consent tools each time an event is made, so every event carries the state that applied
 * when it happened. The IAB APIs answer through callbacks: most CMPs call back synchronously once loaded, and
 * the SDK also subscribes to their change events, so an answer that comes later is used from the next event.
 */
export function createConsentReader(win: Window): ConsentReader {
  const scope = win as unknown as { __tcfapi?: unknown; __gpp?: unknown };
  let tcf: string | undefined;
  let gpp: string | undefined;
  let gppSid: number[] | undefined;
  let tcfSubscribed = false;
  let gppSubscribed = false;

  const onTcData: Callback = (data, success) => {
    if (success && isRecord(data) && data.cmpStatus !== 'error') tcf = iab(data.tcString) ?? tcf;
  };
  const onGppPing = (data: unknown): void => {
    if (!isRecord(data)) return;
    const value = iab(data.gppString);
    if (value === undefined) return;
    gpp = value;
    const sections = data.applicableSections;
    // GPP reports [-1] when no section applies; only real section ids travel.
    gppSid = Array.isArray(sections)
      ? sections.filter((n): n is number => Number.isInteger(n) && n >= 0 && n <= 65_535)
      : undefined;
  };

  function readTcfApi(): void {
    const api = scope.__tcfapi;
    if (typeof api !== 'function') return;
    const call = api as TcfApi;
    try {
      if (!tcfSubscribed) {
        tcfSubscribed = true;
        call('addEventListener', 2, onTcData);
      }
      // Deprecated in TCF 2.2 but still answered by every CMP, and synchronously by most.
      call('getTCData', 2, onTcData);
    } catch {
      // A broken CMP must not break the page's tracking calls.
    }
  }

  function readGppApi(): void {
    const api = scope.__gpp;
    if (typeof api !== 'function') return;
    const call = api as GppApi;
    try {
      if (!gppSubscribed) {
        gppSubscribed = true;
        call('addEventListener', (event, success) => {
          if (success && isRecord(event)) onGppPing(event.pingData);
        });
      }
      // GPP 1.1 answers `ping` through the callback; GPP 1.0 returned the object.
      const returned = call('ping', (data, success) => {
        if (success !== false) onGppPing(data);
      });
      onGppPing(returned);
    } catch {
      // As above.
    }
  }

  const cmpState = (): ['onetrust' | 'cookiebot', ConsentCategories | undefined] => {
    const fromOneTrust = oneTrust();
    return fromOneTrust !== undefined ? ['onetrust', fromOneTrust] : ['cookiebot', cookiebot()];
  };
  const seen = (): ConsentCategories => cmpState()[1] ?? {};

  return {
    seen,
    read(explicit) {
      readTcfApi();
      readGppApi();
      const out: ConsentContext = {};
      const [cmp, fromCmp] = cmpState();
      if (explicit !== null && Object.keys(explicit.c).length > 0) {
        out.categories = { ...fromCmp, ...stillChosen(explicit, fromCmp) };
        out.cmp = 'api';
      } else if (fromCmp !== undefined) {
        out.categories = fromCmp;
        out.cmp = cmp;
      }
      const tcString = tcf ?? iab(readCookie('euconsent-v2'));
      if (tcString !== undefined) out.tcf = tcString;
      if (gpp !== undefined) out.gpp = gpp;
      if (gpp !== undefined && gppSid !== undefined) out.gppSid = gppSid;
      const usp = readCookie('usprivacy');
      if (usp !== null && US_PRIVACY.test(usp)) out.usPrivacy = usp;
      const gpc = (win.navigator as Navigator & { globalPrivacyControl?: unknown }).globalPrivacyControl;
      if (typeof gpc === 'boolean') out.gpc = gpc;
      return out;
    },
  };
}
