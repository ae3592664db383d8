import type { IncomingMessage } from 'node:http';
import { type BlockList, isIP } from 'node:net';
import { addressList } from './destination-guard';

/**
 * The proxies whose X-Forwarded-For entries are believed (`TRUSTED_PROXY_CIDRS`), compiled once: addresses
 * and CIDR ranges, IPv4 and IPv6. `clientIp` asks with IPv4-mapped IPv6 addresses unmapped.
 */
export interface TrustedProxies {
  has(address: string): boolean;
}

/** What `trustedProxies` refuses: an entry that is neither an IP address nor a CIDR range. */
export class TrustedProxiesError extends Error {
  readonly code = 'invalid_trusted_proxies';
}

/**
 * Compiles `TRUSTED_PROXY_CIDRS` entries (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.10`), as @signal/config
 * validated them; an entry that is not one throws `TrustedProxiesError`. None: undefined (hops are counted,
 * not checked).
 */
export function trustedProxies(entries: readonly string[] | undefined): TrustedProxies | undefined {
  if (entries === undefined || entries.length === 0) return undefined;
  let list: BlockList;
  try {
    list = addressList(entries);
  } catch (err) {
    throw new TrustedProxiesError(err instanceof Error ? err.message : 'invalid entry');
  }
  return {
    has(address) {
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * The visitor's address. With `trustedHops` reverse proxies in front of the service (load balancer, ingress),
 * the address is the entry that many hops from the right of X-Forwarded-For: entries further left were
 * written by the client and can be forged. With 0, the socket address is used and X-Forwarded-For ignored.
 *
 * With `proxies` (`TRUSTED_PROXY_CIDRS`), a hop counts only when it is a known proxy: the connection's peer
 * first (a client that reaches the service directly, past the ingress, gets its own address however it fills
 * the header), then each proxy's entry from the right. The first address that is not a known proxy is the
 * client, even before `trustedHops` are used up.
 *
 * Shared by the gateway (`context.ip`), the Identity Hub (per-client rate limits) and the Management API
 * (login throttle, audit log): one reading of TRUSTED_PROXY_HOPS and TRUSTED_PROXY_CIDRS everywhere.
 */
export function clientIp(
  req: IncomingMessage,
  trustedHops: number,
  proxies?: TrustedProxies,
): string | undefined {
  const socketAddress = normalise(req.socket.remoteAddress);
  if (trustedHops <= 0) return socketAddress;
  if (proxies !== undefined && (socketAddress === undefined || !proxies.has(socketAddress))) {
    return socketAddress;
  }
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (proxies !== undefined) {
    // Entries right of the client's were written by proxies in front of the last one: each must be known.
    for (let hop = 1; hop < trustedHops; hop++) {
      const entry = normalise(list[list.length - hop]);
      if (entry === undefined) return socketAddress;
      if (!proxies.has(entry)) return entry;
    }
  }
  const candidate = normalise(list[list.length - trustedHops]);
  return candidate ?? socketAddress;
}

function normalise(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const unmapped = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  return isIP(unmapped) ? unmapped : undefined;
}

/**
 * The rate-limit subject of a client address: an IPv4 address as is; an IPv6 address by its /64, the
 * smallest block a network hands one subscriber (counting single IPv6 addresses would give one client 2^64
 * budgets). `unknown` when there is no usable address (the socket is gone).
 */
export function clientBucket(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  if (isIP(address) !== 6) return address;
  const bare = address.split('%')[0] ?? address; // a zone index names the interface, not the client
  const halves = bare.split('::');
  const groups = (part: string | undefined): string[] =>
    part === undefined || part === '' ? [] : part.split(':');
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  // A trailing dotted IPv4 part fills the last two groups; it never reaches the first four.
  const width = (list: string[]) => list.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const full =
    halves.length === 1
      ? head
      : [...head, ...Array<string>(8 - width(head) - width(tail)).fill('0'), ...tail];
  const prefix = full
    .slice(0, 4)
    .map((g) => (g.includes('.') ? '0' : Number.parseInt(g, 16).toString(16)))
    .join(':');
  return `${prefix}::/64`;
}
