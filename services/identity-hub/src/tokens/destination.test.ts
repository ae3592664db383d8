import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CORPUS_LINKED_DOMAINS, OPEN_REDIRECT_CORPUS } from '../../test/open-redirect-corpus';
import { checkDestination, TOKEN_PARAM, withToken } from './destination';
import { parseLinkedDomains } from './hosts';

const LINKED = parseLinkedDomains(CORPUS_LINKED_DOMAINS);

describe('checkDestination: refused', () => {
  it.each(OPEN_REDIRECT_CORPUS.map((to) => [JSON.stringify(to).slice(0, 80), to]))('%s', (_label, to) => {
    expect(checkDestination(to, LINKED).ok).toBe(false);
  });

  it('refuses anything that is not a string', () => {
    for (const to of [undefined, null, 42, ['https://b.com/'], { href: 'https://b.com/' }]) {
      expect(checkDestination(to, LINKED)).toEqual({ ok: false, reason: 'missing' });
    }
  });

  it('refuses every destination when the pipeline links no domain', () => {
    expect(checkDestination('https://b.com/', [])).toEqual({ ok: false, reason: 'not_linked' });
  });

  it('names the reason', () => {
    expect(checkDestination('//evil.com', LINKED)).toMatchObject({ reason: 'not_absolute' });
    expect(checkDestination('https://b.com@evil.com/', LINKED)).toMatchObject({ reason: 'credentials' });
    expect(checkDestination('https://b.c\tom/', LINKED)).toMatchObject({ reason: 'forbidden_characters' });
    expect(checkDestination('https://evil.com/', LINKED)).toMatchObject({ reason: 'not_linked' });
    expect(checkDestination('http://b.com/', LINKED)).toMatchObject({ reason: 'not_linked' });
    expect(checkDestination(`https://b.com/${'a'.repeat(3000)}`, LINKED)).toMatchObject({
      reason: 'too_long',
    });
  });
});

describe('checkDestination: accepted', () => {
  it.each([
    ['https://b.com/', 'b.com'],
    ['https://b.com', 'b.com'],
    ['https://B.COM/Path?q=1#frag', 'b.com'],
    ['HTTPS://b.com/', 'b.com'],
    ['https://b.com:443/x', 'b.com'],
    ['https://b%2Ecom/', 'b.com'],
    ['https://b.com/@evil.com', 'b.com'],
    ['https://b.com/?next=https://evil.com', 'b.com'],
    ['https://shop.example:8443/cart', 'shop.example'],
    ['http://site-b.localhost:8080/', 'site-b.localhost'],
    ['https://site-b.localhost/', 'site-b.localhost'],
    ['https://bücher.example/', 'xn--bcher-kva.example'],
    // IDNA maps the fullwidth full stop to '.': the browser itself would go to b.com, and the redirect is
    // to the serialisation `https://b.com/`, so there is no second reading of this input.
    ['https://b\uff0ecom/', 'b.com'],
  ])('%s', (to, host) => {
    const verdict = checkDestination(to, LINKED);
    expect(verdict).toMatchObject({ ok: true, host });
  });

  it('hands back the parsed URL, which is what a redirect uses (never the input text)', () => {
    const verdict = checkDestination('https://B.com:443/a/../b?x=1', LINKED);
    expect(verdict.ok && verdict.url.href).toBe('https://b.com/b?x=1');
  });
});

describe('checkDestination: properties', () => {
  const hosts = new Set(LINKED.map((d) => d.host));

  it('whatever the input, an accepted destination is https (http only on *.localhost), on a linked host, without userinfo', () => {
    const pieces = fc.constantFrom(
      'https://',
      'http://',
      '//',
      'b.com',
      'B.COM',
      'evil.com',
      '@',
      ':',
      '8443',
      '443',
      '/',
      '\\',
      '.',
      '%2f',
      '%40',
      '%2e',
      '#',
      '?',
      'site-b.localhost',
      'shop.example',
      '\u0441',
      'xn--',
      '\t',
    );
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 12 }), fc.string({ maxLength: 6 }), (parts, noise) => {
        const to = parts.join('') + noise;
        const verdict = checkDestination(to, LINKED);
        if (!verdict.ok) return;
        const url = verdict.url;
        expect(hosts.has(url.hostname)).toBe(true);
        expect(url.username + url.password).toBe('');
        expect(url.protocol === 'https:' || url.hostname.endsWith('.localhost')).toBe(true);
        expect(to.toLowerCase()).toMatch(/^https?:\/\//);
      }),
      { numRuns: 5000 },
    );
  });

  it('any host that is not exactly a linked one is refused', () => {
    fc.assert(
      fc.property(fc.domain(), (domain) => {
        fc.pre(!hosts.has(domain.toLowerCase()));
        expect(checkDestination(`https://${domain}/`, LINKED).ok).toBe(false);
        expect(checkDestination(`https://b.com.${domain}/`, LINKED).ok).toBe(false);
        expect(checkDestination(`https://${domain}.b.com/`, LINKED).ok).toBe(false);
        expect(checkDestination(`https://b.com@${domain}/`, LINKED).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('withToken', () => {
  const token = 'v1.AQ-_abc';
  it('appends _dftk last, keeping other parameters byte for byte and the fragment', () => {
    const url = new URL('https://b.com/p?a=b%20c&x=%2B+1#top');
    expect(withToken(url, token)).toBe(`https://b.com/p?a=b%20c&x=%2B+1&${TOKEN_PARAM}=${token}#top`);
    expect(withToken(new URL('https://b.com'), token)).toBe(`https://b.com/?_dftk=${token}`);
    expect(withToken(new URL('http://site-b.localhost:8080/x'), token)).toBe(
      `http://site-b.localhost:8080/x?_dftk=${token}`,
    );
  });

  it('replaces a _dftk that was already there (in any spelling), so one URL never carries two tokens', () => {
    const url = new URL('https://b.com/?_dftk=old&q=1&%5Fdftk=older');
    const out = new URL(withToken(url, token));
    expect(out.searchParams.getAll(TOKEN_PARAM)).toEqual([token]);
    expect(out.searchParams.get('q')).toBe('1');
  });
});
