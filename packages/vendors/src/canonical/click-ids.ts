import type { CanonicalEvent } from '@signal/events';

/**
 * Advertising click ids and first-party cookies from `context.clickIds`, under the names browsers and tag
 * managers use for them (URL parameter or cookie name). Values are sent in clear; they identify a click, not
 * a person's contact data.
 */
export interface ClickIds {
  /** Meta `_fbc` cookie (`fb.1.<ms>.<fbclid>`). */
  readonly fbc?: string;
  /** Meta `_fbp` browser id. */
  readonly fbp?: string;
  /** Meta click id from the landing URL, when no `_fbc` cookie was read. */
  readonly fbclid?: string;
  readonly gclid?: string;
  readonly gbraid?: string;
  readonly wbraid?: string;
  readonly ttclid?: string;
  /** TikTok `_ttp` cookie. */
  readonly ttp?: string;
  /** Snap click id (`ScCid` URL parameter). */
  readonly scClickId?: string;
  /** Snap `_scid` cookie (`sc_cookie1`). */
  readonly scCookie1?: string;
  /** Pinterest click id (`epik` parameter / `_epik` cookie). */
  readonly epik?: string;
  /** LinkedIn first-party ads tracking UUID (`li_fat_id`). */
  readonly liFatId?: string;
  /** The GA4 client id, from the `_ga` cookie (`GA1.1.<random>.<seconds>` → `<random>.<seconds>`). */
  readonly gaClientId?: string;
}

const NAMES: Readonly<Record<Exclude<keyof ClickIds, 'gaClientId'>, readonly string[]>> = {
  fbc: ['fbc', '_fbc'],
  fbp: ['fbp', '_fbp'],
  fbclid: ['fbclid'],
  gclid: ['gclid'],
  gbraid: ['gbraid'],
  wbraid: ['wbraid'],
  ttclid: ['ttclid'],
  ttp: ['ttp', '_ttp'],
  scClickId: ['ScCid', 'sccid', 'sc_click_id'],
  scCookie1: ['_scid', 'scid', 'sc_cookie1'],
  epik: ['epik', '_epik'],
  liFatId: ['li_fat_id'],
};

const GA_COOKIE = /^GA\d+\.\d+\.(\d+\.\d+)$/;

export function readClickIds(event: Pick<CanonicalEvent, 'context'>): ClickIds {
  const raw = event.context.clickIds ?? {};
  const out: Record<string, string> = {};
  for (const [key, names] of Object.entries(NAMES)) {
    for (const name of names) {
      const value = Object.hasOwn(raw, name) ? raw[name] : undefined;
      if (value !== undefined && value !== '') {
        out[key] = value;
        break;
      }
    }
  }
  const ga = raw._ga ?? raw.ga_client_id;
  if (ga !== undefined) out.gaClientId = GA_COOKIE.exec(ga)?.[1] ?? ga;
  return out;
}

/** Meta's `fbc` format, built from a landing-page `fbclid` and the event time when no cookie was read. */
export function fbcFromClickId(fbclid: string, eventMs: number): string {
  return `fb.1.${eventMs}.${fbclid}`;
}
