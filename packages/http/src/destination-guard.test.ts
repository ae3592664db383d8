import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressListError, DESTINATION_NOT_ALLOWED, destinationGuard } from './destination-guard';
import { createTestPki, type TestCa, type TestPki } from './testing/test-pki';
import { createVendorDispatcherRegistry, VendorTlsConfigError } from './vendor-dispatcher';
import { request } from './vendor-request';

describe('the destination guard', () => {
  const guard = destinationGuard();

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local: the cloud metadata service'],
    ['100.64.0.1', 'shared address space (CGNAT)'],
    ['0.0.0.0', 'this network'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'IPv6 loopback'],
    ['::', 'unspecified'],
    ['fd00::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['::ffff:10.0.0.1', 'an IPv4-mapped private address'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped 169.254.169.254 in hex'],
    ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
    ['2002:a00:1::1', '6to4 of 10.0.0.1'],
    ['not-an-ip', 'not an address'],
  ])('refuses %s (%s)', (address) => {
    expect(guard.allows(address)).toBe(false);
  });

  it.each([
    '8.8.8.8',
    '157.240.0.35',
    '172.32.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '::ffff:808:808',
  ])('allows the public address %s', (address) => {
    expect(guard.allows(address)).toBe(true);
  });

  it('allows what the deployment lists, and nothing next to it', () => {
    const listed = destinationGuard(['10.20.0.0/16', '::1']);
    expect(listed.allows('10.20.3.4')).toBe(true);
    expect(listed.allows('::ffff:10.20.3.4')).toBe(true);
    expect(listed.allows('::1')).toBe(true);
    expect(listed.allows('10.21.0.1')).toBe(false);
    expect(listed.allows('127.0.0.1')).toBe(false);
    expect(() => destinationGuard(['10.0.0.0/33'])).toThrow(AddressListError);
    expect(() => createVendorDispatcherRegistry({ privateDestinations: { allow: ['nope'] } })).toThrow(
      VendorTlsConfigError,
    );
  });
});

describe('a dispatcher that refuses private destinations', () => {
  let pki: TestPki;
  let ca: TestCa;
  let server: Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    pki = await createTestPki();
    ca = await pki.createCa({ commonName: 'Guard CA' });
    const leaf = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"internal":"secret"}');
    });
    server.on('secureConnection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pki.cleanup();
  });

  it('never connects to a private address, by IP or by a name that resolves to one, and says why', async () => {
    const registry = createVendorDispatcherRegistry({ privateDestinations: { allow: [] } });
    try {
      for (const url of [
        `https://127.0.0.1:${port}/hook`,
        `https://localhost:${port}/hook`,
        `https://[::1]:${port}/hook`,
        `https://[::ffff:127.0.0.1]:${port}/hook`,
      ]) {
        const result = await request(registry.forOrigin(url, { extraCaPem: ca.certPem }), {
          url,
          method: 'POST',
          body: '{}',
        });
        expect(result).toMatchObject({
          ok: false,
          type: 'network_error',
          error: { kind: 'invalid_request', code: DESTINATION_NOT_ALLOWED, retryable: false },
        });
        expect(JSON.stringify(result)).not.toContain('secret');
      }
      expect(connections).toBe(0);
    } finally {
      await registry.close();
    }
  });

  it('reaches a private address the deployment allows (the embedded demo sink, an internal webhook)', async () => {
    const registry = createVendorDispatcherRegistry({
      privateDestinations: { allow: ['127.0.0.1/32', '::1/128'] },
    });
    try {
      const url = `https://localhost:${port}/hook`;
      const result = await request(registry.forOrigin(url, { extraCaPem: ca.certPem }), {
        url,
        method: 'POST',
        body: '{}',
      });
      expect(result).toMatchObject({ ok: true, status: 200 });
    } finally {
      await registry.close();
    }
  });
});
