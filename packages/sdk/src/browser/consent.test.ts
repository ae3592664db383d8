// @vitest-environment happy-dom
import { readVectorJson } from '@signal/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearCookies, setCookie } from '../testing/cookies';
import { cleanCategories, createConsentReader } from './consent';

type Callback = (data: unknown, success: boolean) => void;
interface ConsentWindow {
  __tcfapi?: (command: string, version: number, callback: Callback) => void;
  __gpp?: (command: string, callback: Callback) => unknown;
}
const scope = window as unknown as ConsentWindow;

afterEach(() => {
  clearCookies();
  delete scope.__tcfapi;
  delete scope.__gpp;
  vi.unstubAllGlobals();
});

const tcStrings = readVectorJson<{ tcString: string }[]>('consent/tcf_v2_tc_strings.json').map(
  (v) => v.tcString,
);
const gppVectors = readVectorJson<{ gppString: string; sectionIds?: number[] }[]>('consent/gpp_strings.json');
const usStrings = readVectorJson<{ usprivacy: string }[]>('consent/us_privacy_strings.json').map(
  (v) => v.usprivacy,
);

describe('IAB strings travel raw (decoding is the server’s job)', () => {
  it.each(tcStrings.map((s, i) => [i, s] as const))('TCF vector %i from the euconsent-v2 cookie', (_, tc) => {
    setCookie('euconsent-v2', tc);
    expect(createConsentReader(window).read(null).tcf).toBe(tc);
  });

  it('prefers __tcfapi (answered synchronously) over a stale cookie', () => {
    setCookie('euconsent-v2', tcStrings[1] ?? '');
    const calls: string[] = [];
    scope.__tcfapi = (command, version, callback) => {
      calls.push(`${command}/${version}`);
      if (command === 'getTCData')
        callback({ tcString: tcStrings[2], cmpStatus: 'loaded', gdprApplies: true }, true);
    };
    const reader = createConsentReader(window);
    expect(reader.read(null).tcf).toBe(tcStrings[2]);
    reader.read(null);
    expect(calls).toEqual(['addEventListener/2', 'getTCData/2', 'getTCData/2']);
  });

  it('uses a TC string the CMP delivers later through its event listener from the next event on', () => {
    let listener: Callback = () => {};
    scope.__tcfapi = (command, _version, callback) => {
      if (command === 'addEventListener') listener = callback;
    };
    const reader = createConsentReader(window);
    expect(reader.read(null).tcf).toBeUndefined();
    listener({ tcString: tcStrings[3], eventStatus: 'useractioncomplete', cmpStatus: 'loaded' }, true);
    expect(reader.read(null).tcf).toBe(tcStrings[3]);
  });

  it('ignores a failed or erroring TCF answer and a throwing CMP', () => {
    scope.__tcfapi = (command, _v, callback) => {
      if (command === 'getTCData') callback({ tcString: tcStrings[1], cmpStatus: 'error' }, true);
    };
    expect(createConsentReader(window).read(null).tcf).toBeUndefined();
    scope.__tcfapi = (_c, _v, callback) => callback({ tcString: tcStrings[1] }, false);
    expect(createConsentReader(window).read(null).tcf).toBeUndefined();
    scope.__tcfapi = () => {
      throw new Error('CMP bug');
    };
    expect(createConsentReader(window).read(null)).toEqual({});
  });

  it.each(gppVectors.map((v, i) => [i, v] as const))('GPP vector %i from __gpp ping', (_, vector) => {
    scope.__gpp = (command, callback) => {
      if (command === 'ping') {
        callback(
          {
            gppVersion: '1.1',
            cmpStatus: 'loaded',
            gppString: vector.gppString,
            applicableSections: vector.sectionIds ?? [-1],
          },
          true,
        );
      }
      return undefined;
    };
    const consent = createConsentReader(window).read(null);
    if (/^[\x21-\x7e]+$/.test(vector.gppString)) {
      expect(consent.gpp).toBe(vector.gppString);
      expect(consent.gppSid).toEqual(vector.sectionIds ?? []);
    } else {
      // A string the gateway would refuse (spaces) would cost the whole event: it is left out instead.
      expect(consent.gpp).toBeUndefined();
    }
  });

  it('reads a GPP 1.0 CMP that returns the ping object, and later updates from addEventListener', () => {
    let listener: Callback = () => {};
    scope.__gpp = (command, callback) => {
      if (command === 'addEventListener') listener = callback;
      return command === 'ping' ? { gppString: 'DBABTA~1YNN', applicableSections: [6] } : undefined;
    };
    const reader = createConsentReader(window);
    expect(reader.read(null)).toMatchObject({ gpp: 'DBABTA~1YNN', gppSid: [6] });
    listener(
      { eventName: 'signalStatus', pingData: { gppString: 'DBABTA~1YYN', applicableSections: [6] } },
      true,
    );
    scope.__gpp = (_command, callback) => {
      if (_command === 'addEventListener') listener = callback;
      return undefined;
    };
    expect(reader.read(null)).toMatchObject({ gpp: 'DBABTA~1YYN', gppSid: [6] });
  });

  it.each(usStrings)('US Privacy %s from the usprivacy cookie', (usp) => {
    setCookie('usprivacy', usp);
    expect(createConsentReader(window).read(null).usPrivacy).toBe(usp);
  });

  it('leaves out a malformed usprivacy cookie', () => {
    setCookie('usprivacy', 'yes please');
    expect(createConsentReader(window).read(null).usPrivacy).toBeUndefined();
  });
});

describe('categories', () => {
  it('maps OneTrust groups (OptanonConsent cookie)', () => {
    setCookie(
      'OptanonConsent',
      'isGpcEnabled=0&datestamp=Mon+Nov+03+2025&version=202409.1.0&groups=C0001%3A1%2CC0002%3A0%2CC0003%3A1%2CC0004%3A0%2CC0005%3A1&interactionCount=1',
    );
    expect(createConsentReader(window).read(null)).toEqual({
      categories: { essential: true, analytics: false, functional: true, marketing: false },
      cmp: 'onetrust',
    });
  });

  it('maps Cookiebot (CookieConsent cookie)', () => {
    setCookie(
      'CookieConsent',
      encodeURIComponent(
        "{stamp:'5Tb1k2+Q==',necessary:true,preferences:false,statistics:true,marketing:false,method:'explicit',ver:1,utc:1730000000000,region:'de'}",
      ),
    );
    expect(createConsentReader(window).read(null)).toEqual({
      categories: { essential: true, functional: false, analytics: true, marketing: false },
      cmp: 'cookiebot',
    });
  });

  it("treats Cookiebot's -1 (no consent required in this region) as Cookiebot does: all accepted", () => {
    setCookie('CookieConsent', '-1');
    expect(createConsentReader(window).read(null).categories).toEqual({
      essential: true,
      functional: true,
      analytics: true,
      marketing: true,
    });
  });

  it('lets explicit consent() choices win per category over the CMP state they were made against', () => {
    setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0002%3A1%2CC0004%3A1');
    const reader = createConsentReader(window);
    const consent = reader.read({ c: { marketing: false, personalization: true }, s: reader.seen() });
    expect(consent).toEqual({
      categories: { essential: true, analytics: true, marketing: false, personalization: true },
      cmp: 'api',
    });
    // A choice stored by an earlier version carries no CMP state: it wins, as it did.
    expect(reader.read({ c: { marketing: false } }).categories?.marketing).toBe(false);
  });

  it('lets the CMP win over an explicit choice once the visitor changed their choice there', () => {
    setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0002%3A1%2CC0004%3A1');
    const reader = createConsentReader(window);
    const granted = { c: { marketing: true, personalization: true }, s: reader.seen() };
    // Later, the visitor withdraws marketing in the CMP (C0004:0).
    setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0002%3A1%2CC0004%3A0');
    expect(reader.read(granted)).toEqual({
      categories: { essential: true, analytics: true, marketing: false, personalization: true },
      cmp: 'api',
    });
  });

  it('lets the CMP win only in the categories it changed, whatever their order in its cookie', () => {
    setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0002%3A0%2CC0004%3A1');
    const reader = createConsentReader(window);
    const withdrawn = { c: { marketing: false }, s: reader.seen() };
    // The visitor turns analytics on in the CMP; the groups come back in another order.
    setCookie('OptanonConsent', 'groups=C0004%3A1%2CC0002%3A1%2CC0001%3A1');
    expect(reader.read(withdrawn).categories).toEqual({ essential: true, analytics: true, marketing: false });
  });

  it('reports nothing it does not know: no CMP, no categories', () => {
    expect(createConsentReader(window).read(null)).toEqual({});
  });

  it('forwards Global Privacy Control', () => {
    Object.defineProperty(navigator, 'globalPrivacyControl', { value: true, configurable: true });
    try {
      expect(createConsentReader(window).read(null).gpc).toBe(true);
    } finally {
      delete (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl;
    }
  });

  it('cleans what a page passes to consent(): known categories, booleans only', () => {
    expect(cleanCategories({ analytics: true, marketing: 'yes', sale: true, essential: false })).toEqual({
      analytics: true,
      essential: false,
    });
    expect(cleanCategories('all')).toEqual({});
  });
});
