import { readVectorJson } from '@signal/testkit';
import type { TcfDecoded } from '../src/tcf';

/** The shared consent vectors, read in place; strings are picked by what they encode, never copied. */

export interface TcVector {
  readonly tcString: string;
  readonly source: string;
  readonly generated?: boolean;
  readonly decoded?: TcfDecoded;
  readonly decodeError?: string;
  readonly expectedInvalid?: boolean;
  readonly expectedBySource?: Readonly<Record<string, unknown>>;
  readonly summary?: {
    readonly purposes_1_3_4_7_9_10_consent: Readonly<Record<string, boolean>>;
    readonly purposes_2_7_9_10_LI: Readonly<Record<string, boolean>>;
    readonly vendor755_google_consent: boolean;
    readonly vendor755_google_LI: boolean;
    readonly vendor804_linkedin_consent: boolean;
    readonly vendor1126_microsoft_consent: boolean;
  };
}

export interface GppVector {
  readonly gppString: string;
  readonly description?: string;
  readonly sectionIds?: readonly number[];
  readonly decoded?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly expectedBySource?: Readonly<Record<string, unknown>>;
  readonly expectedInvalid?: boolean;
}

export function tcVectors(): readonly TcVector[] {
  return readVectorJson<TcVector[]>('consent/tcf_v2_tc_strings.json');
}

export function gppVectors(): readonly GppVector[] {
  return readVectorJson<GppVector[]>('consent/gpp_strings.json');
}

function only<T>(matches: readonly T[], what: string): T {
  const [match, ...rest] = matches;
  if (match === undefined || rest.length > 0)
    throw new Error(`expected exactly one vector for ${what}, found ${matches.length}`);
  return match;
}

const same = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((value, index) => value === b[index]);

/** The one TC vector whose decoded content satisfies `predicate`. */
export function tcString(
  what: string,
  predicate: (vector: TcVector, decoded: TcfDecoded) => boolean,
): string {
  return only(
    tcVectors().filter((vector) => vector.decoded !== undefined && predicate(vector, vector.decoded)),
    what,
  ).tcString;
}

/** The one GPP vector with this description. */
export function gppString(description: string): string {
  return only(
    gppVectors().filter((vector) => vector.description === description),
    description,
  ).gppString;
}

/** Named TC strings of the shared vectors, described by what they encode. */
export function namedTcStrings() {
  const generated = (purposes: number[]) => (vector: TcVector, decoded: TcfDecoded) =>
    vector.generated === true &&
    same(decoded.purposeConsents, purposes) &&
    decoded.publisherRestrictions.length === 0;
  return {
    /** P1–11 consent, LI 2,7,9,10; vendors 755, 804, 1126 consent. */
    allGranted: tcString('all granted', generated([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])),
    /** Nothing consented, no LI. */
    nothing: tcString(
      'nothing',
      (vector, decoded) => generated([])(vector, decoded) && decoded.purposeLegitimateInterests.length === 0,
    ),
    /** LI for P2,7,9,10 and vendor 755 LI only. */
    googleLiOnly: tcString(
      'Google LI only',
      (vector, decoded) => generated([])(vector, decoded) && decoded.vendorLegitimateInterests.includes(755),
    ),
    /** P1 consent, vendor 755 consent. */
    p1Google: tcString('P1 + 755', generated([1])),
    /** P1,3,4,7,9,10 consent, vendor 804 consent but not 755. */
    adsNot755: tcString('ads purposes without 755', generated([1, 3, 4, 7, 9, 10])),
    /** P1,7 consent, vendors 755 and 804 consent. */
    p1p7: tcString('P1 + P7', generated([1, 7])),
    /** P1,2,3,4,7,9,10 consent, 755 consent, restriction P3 NOT ALLOWED for 755. */
    p3RestrictedFor755: tcString(
      'P3 restricted for 755',
      (vector, decoded) => vector.generated === true && decoded.publisherRestrictions.length > 0,
    ),
    /** iabtcf-es issue 201: P1–10 consent; restrictions type 1 for vendors 7, 20, … and type 2 for 730 on P1–10. */
    restrictions: tcString(
      'issue 201 restrictions',
      (vector) => vector.expectedBySource?.publisherRestrictions_purpose1_type1 !== undefined,
    ),
    /** A TCF v1.1 string that consents to vendor 755. */
    v1: tcString('v1', (_, decoded) => decoded.version === 1 && decoded.vendorConsents.includes(755)),
  };
}
