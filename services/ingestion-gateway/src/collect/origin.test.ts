import { describe, expect, it } from 'vitest';
import { isOriginAllowed } from './origin';

describe('isOriginAllowed', () => {
  const domains = ['example.com', 'shop.example.org'];
  it.each([
    ['https://example.com', true],
    ['https://www.example.com', true],
    ['https://a.b.example.com', true],
    ['https://shop.example.org', true],
    ['https://example.org', false],
    ['https://badexample.com', false],
    ['https://example.com.evil.net', false],
    ['http://example.com', false], // plain HTTP only for local hosts
    ['https://example.com/path', false],
    ['https://user@example.com', false],
    ['null', false],
    ['javascript:alert(1)', false],
    ['not an origin', false],
  ])('%s → %s', (origin, allowed) => {
    expect(isOriginAllowed(origin, domains, [])).toBe(allowed);
  });

  it('allows plain HTTP for local development hosts on the allowlist', () => {
    expect(isOriginAllowed('http://localhost:8080', ['localhost'], [])).toBe(true);
    expect(isOriginAllowed('http://site-a.localhost:8080', ['site-a.localhost'], [])).toBe(true);
  });

  it('allows exact CORS_ORIGINS for every pipeline', () => {
    expect(isOriginAllowed('https://app.partner.io', [], ['https://app.partner.io'])).toBe(true);
    expect(isOriginAllowed('https://evil.partner.io', [], ['https://app.partner.io'])).toBe(false);
  });
});
