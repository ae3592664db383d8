import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientIp } from './client-ip';

function req(remoteAddress: string, forwarded?: string): IncomingMessage {
  return {
    socket: { remoteAddress },
    headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
  } as unknown as IncomingMessage;
}

describe('clientIp', () => {
  it('uses the socket address and ignores X-Forwarded-For when no proxy is trusted', () => {
    expect(clientIp(req('203.0.113.7', '198.51.100.1'), 0)).toBe('203.0.113.7');
  });

  it('unmaps IPv4-mapped IPv6 socket addresses', () => {
    expect(clientIp(req('::ffff:203.0.113.7'), 0)).toBe('203.0.113.7');
  });

  it('takes the entry written by the trusted proxy, not a client-forged one further left', () => {
    // client forged "1.1.1.1"; the load balancer appended the real client 198.51.100.9
    expect(clientIp(req('10.0.0.2', '1.1.1.1, 198.51.100.9'), 1)).toBe('198.51.100.9');
    expect(clientIp(req('10.0.0.2', '1.1.1.1, 198.51.100.9, 10.0.0.1'), 2)).toBe('198.51.100.9');
  });

  it('falls back to the socket when the header is missing or garbage', () => {
    expect(clientIp(req('203.0.113.7'), 1)).toBe('203.0.113.7');
    expect(clientIp(req('203.0.113.7', 'not-an-ip'), 1)).toBe('203.0.113.7');
  });
});
