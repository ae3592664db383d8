import { describe, expect, it } from 'vitest';
import { extractClickIds } from './click-ids';

describe('extractClickIds', () => {
  it('captures the ad platforms click ids from the landing URL', () => {
    const url = 'https://shop.example/p?utm_source=x&gclid=Cj0KCQ&ttclid=E.C.P.abc&msclkid=m1&li_fat_id=li-1';
    expect(extractClickIds(url, 0)).toEqual({
      gclid: 'Cj0KCQ',
      ttclid: 'E.C.P.abc',
      msclkid: 'm1',
      li_fat_id: 'li-1',
    });
  });

  it('derives Meta fbc from fbclid with the receive time', () => {
    expect(extractClickIds('https://shop.example/?fbclid=IwAR0abc', 1_700_000_000_123)).toEqual({
      fbclid: 'IwAR0abc',
      fbc: 'fb.1.1700000000123.IwAR0abc',
    });
  });

  it('ignores malformed URLs, empty, oversized and non-printable values', () => {
    expect(extractClickIds('not a url', 0)).toEqual({});
    expect(extractClickIds(undefined, 0)).toEqual({});
    expect(extractClickIds(`https://a.example/?gclid=&ttclid=${'x'.repeat(600)}&msclkid=a%20b`, 0)).toEqual(
      {},
    );
  });

  it('gives each event its own ids when consecutive events share a URL (parsed once, never shared)', () => {
    const url = 'https://shop.example/?fbclid=IwAR0abc&gclid=g1';
    const first = extractClickIds(url, 1);
    first.gclid = 'changed by the caller';
    expect(extractClickIds(url, 2)).toEqual({ gclid: 'g1', fbclid: 'IwAR0abc', fbc: 'fb.1.2.IwAR0abc' });
    expect(extractClickIds('https://shop.example/?ttclid=t1', 3)).toEqual({ ttclid: 't1' });
    expect(extractClickIds(url, 4).fbc).toBe('fb.1.4.IwAR0abc');
  });
});
