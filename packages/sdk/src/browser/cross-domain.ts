import type { CrossDomainContext, CrossDomainOptions, LinkClick } from './types';

/** The query parameter that carries an identity token to a linked site (the Identity Hub's `TOKEN_PARAM`). */
export const TOKEN_PARAM = '_dftk';
/** The v1 text form the Identity Hub issues; anything else in `_dftk` is not sent anywhere. */
const TOKEN_SHAPE = /^v1\.[\w-]{120,2048}$/;
/** How long a click may wait for a token before falling back to the redirect endpoint. */
export const TOKEN_TIMEOUT_MS = 1500;
/** How long events wait for an arriving token to be resolved. */
export const RESOLVE_TIMEOUT_MS = 3000;

type Hooks = Required<Pick<CrossDomainOptions, 'decorateLink' | 'onArrival'>>;

/** POSTs JSON to the Identity Hub with the visitor's cookies; gives up (aborting where it can) after `ms`. */
function post(
  ctx: CrossDomainContext,
  path: string,
  body: object,
  ms: number,
  key?: string,
): Promise<Response> {
  const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (key !== undefined) headers['X-Pipeline-Key'] = key;
  return Promise.race([
    fetch(`${ctx.endpoint}/v1/identity/${path}`, {
      method: 'POST',
      credentials: 'include',
      headers,
      body: JSON.stringify(body),
      signal: controller ? controller.signal : null,
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller?.abort();
        reject(new Error('timeout'));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** `url` with `_dftk=<token>` last (an existing `_dftk` dropped); other parameters kept byte for byte. */
export function withToken(url: URL, token: string): string {
  const pairs = url.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '' && pair.split('=')[0] !== TOKEN_PARAM);
  pairs.push(`${TOKEN_PARAM}=${token}`);
  return `${url.origin}${url.pathname}?${pairs.join('&')}${url.hash}`;
}

/**
 * The Identity Hub linker: Datafly.js's built-in `crossDomain` hooks, used when the page gives only
 * `linkedDomains`.
 *
 * Leaving: a plain left click on a link to a linked domain (exact host) is held, a fresh single-use token
 * is fetched just in time (`POST {endpoint}/v1/identity/token`, with the `_dfid` cookie), and the browser
 * goes to the link with `_dftk=<token>` added. If the token request fails or times out it goes through the
 * redirect endpoint (`GET {endpoint}/v1/identity/redirect?to=…&pipelineKey=…`), which mints the token
 * server-side; if the hub refuses the destination it just follows the link. Middle clicks, modified clicks
 * and `target` links must open synchronously, so their `href` is pointed at the redirect endpoint instead.
 * Tokens are never put into links ahead of time, so none can be copied, bookmarked or crawled.
 *
 * Arriving: `_dftk` is removed from the address bar with `history.replaceState` first (before the page view
 * is recorded or any later script or outgoing Referer can see it), then resolved (`POST
 * {endpoint}/v1/identity/resolve`), which sets `_dfid` on this site; the SDK adopts the anonymous id and
 * holds its queue until then (at most RESOLVE_TIMEOUT_MS).
 */
export function crossDomainLinker(win: Window, linkedDomains: readonly string[]): Hooks {
  const exact = (url: URL): boolean => linkedDomains.indexOf(url.hostname.toLowerCase()) !== -1;

  function redirectUrl(url: URL, ctx: CrossDomainContext): string {
    return `${ctx.endpoint}/v1/identity/redirect?to=${encodeURIComponent(url.href)}&pipelineKey=${encodeURIComponent(ctx.pipelineKey)}`;
  }

  function plain(click: LinkClick): boolean {
    const { event, anchor } = click;
    const target = anchor.target;
    return (
      event.type === 'click' &&
      event.button === 0 &&
      !(event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) &&
      !event.defaultPrevented &&
      (target === '' || target === '_self') &&
      !anchor.hasAttribute('download')
    );
  }

  async function leave(url: URL, ctx: CrossDomainContext): Promise<void> {
    let next = redirectUrl(url, ctx);
    try {
      const response = await post(ctx, 'token', { to: url.href }, TOKEN_TIMEOUT_MS, ctx.pipelineKey);
      if (response.ok) {
        const body = (await response.json()) as { token?: unknown };
        next =
          typeof body.token === 'string' && TOKEN_SHAPE.test(body.token)
            ? withToken(url, body.token)
            : url.href;
      } else if (response.status < 500 && response.status !== 408 && response.status !== 429) {
        // Refused for good (no identity yet, destination not linked): the redirect would refuse too.
        next = url.href;
      }
    } catch {
      // Network error or timeout: the redirect endpoint gets a second chance to carry the identity.
    }
    win.location.assign(next);
  }

  function resolve(token: string, ctx: Parameters<Hooks['onArrival']>[1]): Promise<void> {
    return post(ctx, 'resolve', { token }, RESOLVE_TIMEOUT_MS, ctx.pipelineKey)
      .then((response) => (response.ok ? (response.json() as Promise<{ anonymousId?: unknown }>) : null))
      .then((body) => {
        if (body !== null && typeof body.anonymousId === 'string') ctx.setAnonymousId(body.anonymousId);
      })
      .catch(() => undefined);
  }

  return {
    decorateLink(url, ctx, click) {
      if (!exact(url)) return undefined;
      if (click === undefined || !plain(click)) return redirectUrl(url, ctx);
      click.event.preventDefault();
      void leave(url, ctx);
      return undefined;
    },
    onArrival(url, ctx) {
      let token: string | undefined;
      const rest = url.search
        .slice(1)
        .split('&')
        .filter((pair) => {
          if (pair.split('=')[0] !== TOKEN_PARAM) return pair !== '';
          token ??= pair.slice(TOKEN_PARAM.length + 1);
          return false;
        });
      if (token === undefined) return undefined;
      // Out of the address bar before anything else runs: never bookmarked, shared or sent as a Referer.
      try {
        win.history.replaceState(
          win.history.state,
          '',
          `${url.pathname}${rest.length > 0 ? `?${rest.join('&')}` : ''}${url.hash}`,
        );
      } catch {
        // A sandboxed document may refuse; the token is single-use and expires within two minutes anyway.
      }
      return TOKEN_SHAPE.test(token) ? resolve(token, ctx) : undefined;
    },
  };
}
