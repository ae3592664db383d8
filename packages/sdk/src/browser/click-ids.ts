import type { KeyValueStore } from './storage';
import { isRecord, parseJson, readCookie } from './storage';

/**
 * Advertising click ids by their usual spelling. Query parameters match case-insensitively (Snapchat's
 * `ScCid` arrives as `sccid` too) and are stored under these names, which the vendor formatters read.
 */
export const CLICK_ID_PARAMS: readonly string[] = [
  'gclid',
  'gbraid',
  'wbraid',
  'dclid',
  'fbclid',
  'ttclid',
  'msclkid',
  'li_fat_id',
  'ScCid',
  'epik',
  'twclid',
  'rdt_cid',
  'irclickid',
];

/** First-party cookies that vendor pixels set and their conversion APIs want back (`_fbp` → `fbp`). */
const CLICK_ID_COOKIES: readonly string[] = ['_fbp', '_fbc', '_ttp'];

const VALUE = /^[\x21-\x7e]{1,1024}$/;
const SESSION_KEY = 'df.cid';

/** Click ids from `search` merged over those already seen in this session; the merge is kept for the session. */
export function captureClickIds(search: string, session: KeyValueStore): Record<string, string> {
  const stored = parseJson(session.get(SESSION_KEY));
  const ids: Record<string, string> = {};
  if (isRecord(stored)) {
    for (const [k, v] of Object.entries(stored)) if (typeof v === 'string' && VALUE.test(v)) ids[k] = v;
  }
  const byLower = new Map(CLICK_ID_PARAMS.map((name) => [name.toLowerCase(), name]));
  let changed = false;
  for (const [param, value] of new URLSearchParams(search)) {
    const name = byLower.get(param.toLowerCase());
    if (name !== undefined && VALUE.test(value)) {
      ids[name] = value;
      changed = true;
    }
  }
  if (changed) session.set(SESSION_KEY, JSON.stringify(ids));
  return ids;
}

export function forgetClickIds(session: KeyValueStore): void {
  session.remove(SESSION_KEY);
}

/** The session's click ids plus the vendor cookies present right now, or undefined when there are none. */
export function clickIdContext(session: Record<string, string>): Record<string, string> | undefined {
  const out = { ...session };
  for (const cookie of CLICK_ID_COOKIES) {
    const value = readCookie(cookie);
    if (value !== null && VALUE.test(value)) out[cookie.slice(1)] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
