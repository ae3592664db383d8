/**
 * Advertising click ids read from the landing page URL (`context.page.url`), so vendors can attribute a
 * conversion without third-party cookies. Names are the query parameters the ad platforms append.
 */
const CLICK_ID_PARAMS = [
  'gclid', // Google Ads
  'gbraid', // Google Ads (iOS app → web)
  'wbraid', // Google Ads (web → app)
  'dclid', // Google Display & Video 360
  'fbclid', // Meta
  'ttclid', // TikTok
  'msclkid', // Microsoft Advertising
  'li_fat_id', // LinkedIn
  'ScCid', // Snapchat
  'epik', // Pinterest
  'twclid', // X
  'rdt_cid', // Reddit
] as const;

const MAX_VALUE = 512;
const PRINTABLE = /^[\x21-\x7e]+$/;

/**
 * Returns the click ids present in `pageUrl`, plus Meta's `fbc` (`fb.1.<ms>.<fbclid>`, the format of the
 * `_fbc` cookie that Meta's pixel would have set) when an fbclid is present. Malformed URLs and oversized or
 * non-printable values yield nothing rather than an error: click ids are best-effort enrichment.
 */
export function extractClickIds(pageUrl: string | undefined, receivedAtMs: number): Record<string, string> {
  // No query string, no click ids (and no URL parse, the costly part).
  if (!pageUrl?.includes('?')) return {};
  if (pageUrl !== lastUrl) {
    lastIds = clickIdsOf(pageUrl);
    lastUrl = pageUrl;
  }
  const out = { ...lastIds };
  if (out.fbclid) out.fbc = `fb.1.${receivedAtMs}.${out.fbclid}`;
  return out;
}

/**
 * The last URL parsed and its ids: the events of one batch usually come from the same page, so the URL is
 * parsed once per batch rather than once per event.
 */
let lastUrl: string | undefined;
let lastIds: Readonly<Record<string, string>> = {};

function clickIdsOf(pageUrl: string): Record<string, string> {
  let params: URLSearchParams;
  try {
    params = new URL(pageUrl).searchParams;
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  for (const name of CLICK_ID_PARAMS) {
    const value = params.get(name);
    if (value && value.length <= MAX_VALUE && PRINTABLE.test(value)) out[name] = value;
  }
  return out;
}
