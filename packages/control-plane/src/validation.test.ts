import { describe, expect, it } from 'vitest';
import { allowedDomainsSchema, emailSchema, linkedDomainsSchema, slugify } from './validation';

describe('input validation', () => {
  it('normalises emails', () => {
    expect(emailSchema.parse('  Admin@Example.COM ')).toBe('admin@example.com');
    expect(emailSchema.safeParse('not-an-email').success).toBe(false);
  });

  it('accepts host names (with port), wildcards only where allowed, and dedupes', () => {
    expect(
      allowedDomainsSchema.parse(['Shop.Example.com', '*.example.com', 'localhost:8443', 'shop.example.com']),
    ).toEqual(['shop.example.com', '*.example.com', 'localhost:8443']);
    expect(linkedDomainsSchema.safeParse(['*.example.com']).success).toBe(false);
    for (const bad of [
      'https://x.example',
      'x.example/path',
      '-x.example',
      'x..example',
      'a b',
      'x.example:0',
    ]) {
      expect(allowedDomainsSchema.safeParse([bad]).success).toBe(false);
    }
  });

  it('slugifies names', () => {
    expect(slugify('My Shop!  (EU)')).toBe('my-shop-eu');
    expect(slugify('Café Münster')).toBe('cafe-munster');
    expect(slugify('!!!')).toBe('pipeline');
  });
});
