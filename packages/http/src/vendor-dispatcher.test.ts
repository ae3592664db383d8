import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestCa, type TestPki } from './testing/test-pki';
import {
  createVendorDispatcher,
  createVendorDispatcherRegistry,
  VendorTlsConfigError,
} from './vendor-dispatcher';

let pki: TestPki;
let caA: TestCa;
let caB: TestCa;

beforeAll(async () => {
  pki = await createTestPki();
  [caA, caB] = await Promise.all([
    pki.createCa({ commonName: 'CA A' }),
    pki.createCa({ commonName: 'CA B' }),
  ]);
});

afterAll(async () => {
  await pki.cleanup();
});

describe('createVendorDispatcher', () => {
  it('has no option that turns certificate verification off, at compile time or at run time', () => {
    // @ts-expect-error rejectUnauthorized is deliberately not part of the options type
    expect(() => createVendorDispatcher({ rejectUnauthorized: false })).toThrow(VendorTlsConfigError);
    // @ts-expect-error nor is a custom connector, which could skip verification
    expect(() => createVendorDispatcher({ connect: () => {} })).toThrow(/Unrecognized key/);
    // @ts-expect-error nor a host name check override
    expect(() => createVendorDispatcher({ checkServerIdentity: () => undefined })).toThrow(
      VendorTlsConfigError,
    );
  });

  it('refuses nonsense timeouts', () => {
    expect(() => createVendorDispatcher({ headersTimeoutMs: 0 })).toThrow(/headersTimeoutMs/);
    expect(() => createVendorDispatcher({ connectTimeoutMs: 1.5 })).toThrow(/connectTimeoutMs/);
  });

  it('accepts only CA certificates as extra trust anchors', async () => {
    const leaf = await caA.issueServerCertificate();
    expect(() => createVendorDispatcher({ extraCaPem: leaf.certPem })).toThrow(/not a CA/);
    expect(() => createVendorDispatcher({ extraCaPem: 'garbage' })).toThrow(/no PEM certificate/);
    const broken = caA.certPem.replace(/\n[A-Za-z0-9+/]{16}/, '\n!!!!!!!!!!!!!!!!');
    expect(() => createVendorDispatcher({ extraCaPem: broken })).toThrow(/cannot be parsed/);
    const agent = createVendorDispatcher({ extraCaPem: `${caA.certPem}${caB.certPem}` });
    await agent.close();
  });
});

describe('vendor dispatcher registry', () => {
  it('keeps one Agent per origin and CA', async () => {
    const registry = createVendorDispatcherRegistry({ headersTimeoutMs: 5_000 });
    const meta = registry.forOrigin('https://graph.facebook.com/v19.0/123/events');
    expect(registry.forOrigin(new URL('https://graph.facebook.com/other?x=1'))).toBe(meta);
    expect(registry.forOrigin('https://www.google-analytics.com/mp/collect')).not.toBe(meta);

    const privateA = registry.forOrigin('https://hooks.internal.example', { extraCaPem: caA.certPem });
    const reformatted = `\r\n${caA.certPem.replaceAll('\n', '\r\n')}\r\n`;
    expect(registry.forOrigin('https://hooks.internal.example/path', { extraCaPem: reformatted })).toBe(
      privateA,
    );
    expect(registry.forOrigin('https://hooks.internal.example', { extraCaPem: caB.certPem })).not.toBe(
      privateA,
    );
    expect(registry.forOrigin('https://hooks.internal.example')).not.toBe(privateA);
    expect(registry.size).toBe(5);

    await registry.close();
    expect(registry.size).toBe(0);
  });

  it('refuses non-https origins and invalid URLs', async () => {
    const registry = createVendorDispatcherRegistry();
    expect(() => registry.forOrigin('http://hooks.internal.example')).toThrow(/must use https/);
    expect(() => registry.forOrigin('::not a url')).toThrow(VendorTlsConfigError);
    await registry.close();
  });
});
