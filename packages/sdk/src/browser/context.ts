import type { EventContext, PageContext } from './types';

/** Cuts a string to the gateway's bound for its field, so one long value cannot get the event refused. */
function cut(value: string, max: number): string {
  return value.length > max ? value.slice(0, max) : value;
}

/** Where the visitor is now. The URL is sent whole (click ids stay in it); form fields are never read. */
export function pageContext(win: Window): PageContext {
  const { location, document } = win;
  const out: PageContext = { url: cut(location.href, 8192), path: cut(location.pathname, 4096) };
  if (location.search) out.search = cut(location.search, 8192);
  if (document.referrer) out.referrer = cut(document.referrer, 8192);
  if (document.title) out.title = cut(document.title, 1024);
  return out;
}

/**
 * What every analytics tag reports about the browser, and no more: no canvas, font, plugin or hardware
 * probing, nothing that would fingerprint the visitor.
 */
export function deviceContext(
  win: Window,
): Pick<EventContext, 'userAgent' | 'locale' | 'timezone' | 'screen'> {
  const out: Pick<EventContext, 'userAgent' | 'locale' | 'timezone' | 'screen'> = {};
  const nav = win.navigator;
  if (nav.userAgent) out.userAgent = cut(nav.userAgent, 1024);
  if (nav.language) out.locale = cut(nav.language, 64);
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) out.timezone = cut(zone, 64);
  } catch {
    // Intl without time zone data: leave it out.
  }
  const screen = win.screen;
  if (screen?.width)
    out.screen = { width: screen.width, height: screen.height, density: win.devicePixelRatio || 1 };
  return out;
}
