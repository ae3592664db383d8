import { describe, expect, it } from 'vitest';
import {
  anonymousIdSetCookie,
  isValidAnonymousId,
  newAnonymousId,
  readAnonymousIdCookie,
} from './anonymous-id-cookie';

describe('_dfid cookie', () => {
  it('is HttpOnly, Secure, SameSite=Lax, 400 days, on the cookie domain', () => {
    expect(anonymousIdSetCookie('0f0e0d0c-0b0a-4908-8706-050403020100', '.example.com')).toBe(
      '_dfid=0f0e0d0c-0b0a-4908-8706-050403020100; Max-Age=34560000; Path=/; Domain=.example.com; HttpOnly; Secure; SameSite=Lax',
    );
  });

  it('omits Domain when no cookie domain is configured (host-only cookie)', () => {
    expect(anonymousIdSetCookie('0f0e0d0c-0b0a-4908-8706-050403020100', null)).not.toContain('Domain=');
  });

  it('reads our id among other cookies and ignores junk', () => {
    const id = newAnonymousId();
    expect(readAnonymousIdCookie(`a=1; _dfid=${id}; b=2`)).toBe(id);
    expect(readAnonymousIdCookie('_dfid=<script>; a=1')).toBeUndefined();
    expect(readAnonymousIdCookie('x_dfid=abcdefabcdefabcdef')).toBeUndefined();
    expect(readAnonymousIdCookie(undefined)).toBeUndefined();
  });

  it('validates client-sent anonymous ids by shape', () => {
    expect(isValidAnonymousId(newAnonymousId())).toBe(true);
    expect(isValidAnonymousId('short')).toBe(false);
    expect(isValidAnonymousId('a b c d e f g h i j k l')).toBe(false);
    expect(isValidAnonymousId(42)).toBe(false);
    expect(isValidAnonymousId(null)).toBe(false);
  });

  it('never writes an id that could inject cookie attributes', () => {
    expect(() => anonymousIdSetCookie('abcdefabcdefabcdef; Domain=evil.example', null)).toThrow(TypeError);
  });
});
