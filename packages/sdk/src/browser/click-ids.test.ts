// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from 'vitest';
import { clearCookies, setCookie } from '../testing/cookies';
import { CLICK_ID_PARAMS, captureClickIds, clickIdContext, forgetClickIds } from './click-ids';
import { webStore } from './storage';

afterEach(() => {
  sessionStorage.clear();
  clearCookies();
});

describe('click ids', () => {
  it('captures every known click id from the landing URL under its usual name', () => {
    const search = `?${CLICK_ID_PARAMS.map((p, i) => `${p.toLowerCase()}=v${i}`).join('&')}&utm_source=x&q=shoes`;
    const ids = captureClickIds(search, webStore('sessionStorage'));
    expect(ids).toEqual(Object.fromEntries(CLICK_ID_PARAMS.map((p, i) => [p, `v${i}`])));
    expect(ids.ScCid).toBe(`v${CLICK_ID_PARAMS.indexOf('ScCid')}`);
  });

  it('remembers them for the session and lets a newer landing override one of them', () => {
    const session = webStore('sessionStorage');
    captureClickIds('?gclid=first&fbclid=fb1', session);
    expect(captureClickIds('?page=2', session)).toEqual({ gclid: 'first', fbclid: 'fb1' });
    expect(captureClickIds('?gclid=second', session)).toEqual({ gclid: 'second', fbclid: 'fb1' });
    forgetClickIds(session);
    expect(captureClickIds('', session)).toEqual({});
  });

  it('refuses values the gateway would reject (spaces, control characters, over 1024 characters)', () => {
    const ids = captureClickIds(
      `?gclid=a%20b&fbclid=${'x'.repeat(1025)}&ttclid=%01&msclkid=ok`,
      webStore('sessionStorage'),
    );
    expect(ids).toEqual({ msclkid: 'ok' });
  });

  it('adds first-party vendor cookies present at send time', () => {
    setCookie('_fbp', 'fb.1.1700000000000.123456789');
    expect(clickIdContext({ gclid: 'g' })).toEqual({ gclid: 'g', fbp: 'fb.1.1700000000000.123456789' });
    clearCookies();
    expect(clickIdContext({})).toBeUndefined();
  });
});
