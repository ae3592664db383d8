import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Where deliveries may connect. An integration's destination is set by people with the editor role (a
 * vendor's `endpoint` override, a webhook's `url`, an extra CA): without a check, one of them could point
 * the delivery worker at a service inside the deployment's network (a cloud metadata endpoint, an internal
 * API, the database's HTTP port) and read its answers in the dead-letter queue (server-side request
 * forgery). The guard refuses every address in a private or special-purpose range unless it is listed
 * (`DELIVERY_ALLOWED_PRIVATE_CIDRS`), and checks the addresses a host name resolves to at connect time, so
 * a name that resolves to a private address (or is re-pointed at one after a first check, DNS rebinding)
 * is refused too. IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry.
 */
export interface DestinationGuard {
  /** Whether a connection to this IP address may be made. */
  allows(address: string): boolean;
  /** `dns.lookup` for `net.connect`/`tls.connect`: fails with `DestinationNotAllowedError` on a refused address. */
  readonly lookup: LookupFunction;
}

/** The code a refused connection fails with (`NetworkError.code`; not retryable: it needs a configuration change). */
export const DESTINATION_NOT_ALLOWED = 'ERR_DESTINATION_NOT_ALLOWED';

export class DestinationNotAllowedError extends Error {
  override readonly name = 'DestinationNotAllowedError';
  readonly code = DESTINATION_NOT_ALLOWED;
}

/** What `destinationGuard` refuses: an allowlist entry that is neither an IP address nor a CIDR range. */
export class AddressListError extends Error {
  override readonly name = 'AddressListError';
  readonly code = 'invalid_address_list';
}

/**
 * Special-purpose ranges (IANA IPv4 and IPv6 special-purpose address registries): "this network", private
 * (RFC 1918), shared address space (CGNAT), loopback, link-local (cloud metadata at 169.254.169.254),
 * IETF protocol assignments, documentation, 6to4 relay, benchmarking, multicast, reserved; IPv6 unspecified,
 * loopback, NAT64 (it embeds an IPv4 address), discard, Teredo and documentation, 6to4, unique local,
 * link-local, site-local and multicast.
 */
const RESERVED: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/32',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

/** Compiles IP addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.10`) into a BlockList. */
export function addressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    try {
      if (isIP(address) === 0 || extra !== undefined) throw new Error('not an address');
      if (prefix === undefined) list.addAddress(address, family);
      else if (/^\d{1,3}$/.test(prefix)) list.addSubnet(address, Number(prefix), family);
      else throw new Error('not a prefix length');
    } catch {
      throw new AddressListError(`"${entry}" is not an IP address or CIDR range`);
    }
  }
  return list;
}

const reserved = addressList(RESERVED);
const MAPPED_DOTTED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;

/** The IPv4 address an IPv4-mapped IPv6 address carries (`::ffff:10.0.0.1`, `::ffff:a00:1`), else undefined. */
function mappedV4(address: string): string | undefined {
  const dotted = MAPPED_DOTTED.exec(address)?.[1];
  if (dotted !== undefined) return dotted;
  const hex = MAPPED_HEX.exec(address);
  if (hex === null) return undefined;
  const high = Number.parseInt(hex[1] ?? '0', 16);
  const low = Number.parseInt(hex[2] ?? '0', 16);
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** Whether `list` holds the address (a mapped IPv6 address as the IPv4 address it carries). */
function inList(list: BlockList, address: string): boolean {
  const v4 = mappedV4(address);
  if (v4 !== undefined) return list.check(v4, 'ipv4');
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * A guard that refuses private and special-purpose addresses except those in `allowPrivate` (IPs or CIDR
 * ranges, as @signal/config validated them; an invalid entry throws `AddressListError`). Anything that is
 * not an IP address is refused.
 */
export function destinationGuard(allowPrivate: readonly string[] = []): DestinationGuard {
  const allowed = addressList(allowPrivate);
  const allows = (address: string): boolean =>
    isIP(address) !== 0 && (!inList(reserved, address) || inList(allowed, address));

  const refusal = (hostname: string, address: string) =>
    new DestinationNotAllowedError(
      `${hostname} resolves to ${address}, a private or reserved address; deliveries may reach it only when DELIVERY_ALLOWED_PRIVATE_CIDRS lists it`,
    );

  const lookup: LookupFunction = (hostname, opts, done) => {
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err !== null) {
        done(err, opts.all === true ? [] : '', 0);
        return;
      }
      // Every address must pass: happy eyeballs may try any of them.
      const refused = addresses.find((a) => !allows(a.address));
      if (refused !== undefined || addresses.length === 0) {
        done(refusal(hostname, refused?.address ?? 'no address'), opts.all === true ? [] : '', 0);
        return;
      }
      const first = addresses[0] as LookupAddress;
      if (opts.all === true) done(null, addresses);
      else done(null, first.address, first.family);
    });
  };

  return { allows, lookup };
}

/** The refusal for a literal IP host (`https://10.0.0.5/`), which `net.connect` does not look up. */
export function refusedLiteral(
  guard: DestinationGuard,
  hostname: string,
): DestinationNotAllowedError | undefined {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(host) === 0 || guard.allows(host)) return undefined;
  return new DestinationNotAllowedError(
    `${host} is a private or reserved address; deliveries may reach it only when DELIVERY_ALLOWED_PRIVATE_CIDRS lists it`,
  );
}
