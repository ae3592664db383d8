import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientIp, TrustedProxiesError, trustedProxies } from './client-ip';

function req(remoteAddress: string, forwarded?: string): IncomingMessage {
  return {
    socket: { remoteAddress },
    headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
  } as unknown as IncomingMessage;
}

/** The ingress pods' network and a load balancer's address, as an operator would list them. */
const proxies = trustedProxies(['10.0.0.0/8', '2001:db8:f::/48', '192.0.2.10']);

describe('clientIp with TRUSTED_PROXY_CIDRS', () => {
  it.each([
    // [case, peer, X-Forwarded-For, hops, client]
    ['through the ingress: the entry it appended', '10.1.2.3', '1.1.1.1, 198.51.100.9', 1, '198.51.100.9'],
    [
      'a client at the pod directly cannot choose its address',
      '198.51.100.66',
      '1.1.1.1',
      1,
      '198.51.100.66',
    ],
    ['… nor by writing a whole proxy chain', '198.51.100.66', '1.1.1.1, 10.0.0.1', 2, '198.51.100.66'],
    [
      'load balancer then ingress: two listed hops',
      '10.1.2.3',
      '1.1.1.1, 198.51.100.9, 192.0.2.10',
      2,
      '198.51.100.9',
    ],
    ['an unlisted middle hop is the client', '10.1.2.3', '1.1.1.1, 198.51.100.9', 2, '198.51.100.9'],
    ['an IPv6 ingress and client', '2001:db8:f::2', '2001:db8:1::7', 1, '2001:db8:1::7'],
    ['an IPv4-mapped peer is compared unmapped', '::ffff:10.9.9.9', '203.0.113.5', 1, '203.0.113.5'],
    ['a listed peer with no header: the peer', '10.1.2.3', undefined, 1, '10.1.2.3'],
    ['garbage where a hop should be: the peer', '10.1.2.3', '1.1.1.1, not-an-ip', 2, '10.1.2.3'],
    ['hops 0: the peer, whatever the list', '10.1.2.3', '198.51.100.9', 0, '10.1.2.3'],
  ] as const)('%s', (_case, peer, forwarded, hops, client) => {
    expect(clientIp(req(peer, forwarded), hops, proxies)).toBe(client);
  });

  it('without a list, hops are counted as before (forged by a client that reaches the pod)', () => {
    expect(clientIp(req('198.51.100.66', '1.1.1.1'), 1)).toBe('1.1.1.1');
    expect(trustedProxies([])).toBeUndefined();
    expect(trustedProxies(undefined)).toBeUndefined();
  });

  it('refuses an entry that is not an address or range', () => {
    for (const entry of ['10.0.0.0/33', 'ingress.local', '10.0.0.0/8/1', '2001:db8::/129', '10.0.0.0/x']) {
      expect(() => trustedProxies([entry])).toThrow(TrustedProxiesError);
    }
  });
});
