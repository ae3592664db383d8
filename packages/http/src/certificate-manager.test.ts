import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificateMaterial } from './certificate-manager';
import { createTestPki, type TestCa, type TestCertificate, type TestPki } from './testing/test-pki';

let pki: TestPki;
let ca: TestCa;
let leaf: TestCertificate;

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa();
  leaf = await ca.issueServerCertificate();
});

afterAll(async () => {
  await pki.cleanup();
});

describe('parseCertificateMaterial', () => {
  const now = () => new Date();

  it('accepts a certificate with its chain and reports its public facts', () => {
    const result = parseCertificateMaterial(
      { cert: `${leaf.certPem}${ca.certPem}`, key: leaf.keyPem },
      now(),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.info).toMatchObject({ fingerprint256: leaf.fingerprint256, notAfter: leaf.notAfter });
    expect(result.value.info.issuer).toContain(ca.commonName);
  });

  it('refuses a client CA bundle that holds a leaf certificate or nothing', () => {
    const withLeaf = parseCertificateMaterial(
      { cert: leaf.certPem, key: leaf.keyPem, ca: leaf.certPem },
      now(),
    );
    expect(withLeaf).toMatchObject({ ok: false, error: { code: 'invalid_ca' } });
    const empty = parseCertificateMaterial({ cert: leaf.certPem, key: leaf.keyPem, ca: '' }, now());
    expect(empty).toMatchObject({ ok: false, error: { code: 'invalid_ca' } });
    const valid = parseCertificateMaterial({ cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem }, now());
    expect(valid.ok).toBe(true);
  });

  it('never puts key material in its error messages', () => {
    const keyBody = leaf.keyPem.split('\n')[1] ?? '';
    const broken = leaf.keyPem.replace(keyBody, `${keyBody.slice(0, 10)}!!${keyBody.slice(12)}`);
    const result = parseCertificateMaterial({ cert: leaf.certPem, key: broken }, now());
    expect(result).toMatchObject({ ok: false, error: { code: 'invalid_key' } });
    if (result.ok) return;
    expect(result.error.message).not.toContain(keyBody.slice(0, 10));
    expect(result.error.cause).toBeUndefined();
  });

  it('refuses a certificate that is expired at the given time', () => {
    const result = parseCertificateMaterial(
      { cert: leaf.certPem, key: leaf.keyPem },
      new Date(leaf.notAfter.getTime() + 1000),
    );
    expect(result).toMatchObject({ ok: false, error: { code: 'expired' } });
  });
});
