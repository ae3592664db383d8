import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * The visitor's address. With `trustedHops` reverse proxies in front of the service (load balancer, ingress),
 * the address is the entry that many hops from the right of X-Forwarded-For: entries further left were
 * written by the client and can be forged. With 0, the socket address is used and X-Forwarded-For ignored.
 * Shared by the gateway (`context.ip`) and the Identity Hub (per-client rate limits): one reading of
 * TRUSTED_PROXY_HOPS everywhere.
 */
export function clientIp(req: IncomingMessage, trustedHops: number): string | undefined {
  const socketAddress = normalise(req.socket.remoteAddress);
  if (trustedHops <= 0) return socketAddress;
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  const candidate = normalise(list[list.length - trustedHops]);
  return candidate ?? socketAddress;
}

function normalise(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const unmapped = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  return isIP(unmapped) ? unmapped : undefined;
}
