import {
  type CategoryStates,
  type ConsentCategory,
  REPORTED_GOOGLE_CONSENT_SIGNALS,
  type ReportedGoogleConsentMode,
  type ReportedGoogleConsentSignal,
} from './state';

/**
 * CMP codes → canonical categories. One code may feed several categories, several codes may feed one.
 * Combination rule everywhere: a category is granted when at least one reported code feeding it is granted and
 * none is denied; one denial wins; no reported code leaves it unset. The README renders these tables.
 */
export type CategoryMapping = Readonly<Record<string, readonly ConsentCategory[]>>;

/** OneTrust default cookie groups (`OnetrustActiveGroups`). */
export const ONETRUST_GROUPS: CategoryMapping = {
  C0001: ['essential'], // Strictly Necessary
  C0002: ['analytics'], // Performance
  C0003: ['functional', 'personalization'], // Functional: "enhanced functionality and personalisation"
  C0004: ['marketing'], // Targeting
  C0005: ['marketing'], // Social Media: cross-site tracking by social networks
};

/** OneTrust groups assumed configured when the SDK does not send the banner's group list. */
export const ONETRUST_ASSUMED_GROUPS: readonly string[] = ['C0001', 'C0002', 'C0003', 'C0004'];

/** Cookiebot `Cookiebot.consent` flags. */
export const COOKIEBOT_CATEGORIES: CategoryMapping = {
  necessary: ['essential'],
  preferences: ['functional', 'personalization'],
  statistics: ['analytics'],
  marketing: ['marketing'],
};

/** Didomi standard purpose ids that map one to one (TCF-named purposes; `cookies` and custom ones are not mapped). */
export const DIDOMI_PURPOSES: CategoryMapping = {
  select_basic_ads: ['marketing'],
  create_ads_profile: ['marketing'],
  select_personalized_ads: ['marketing'],
  measure_ad_performance: ['marketing'],
  measure_content_performance: ['analytics'],
  market_research: ['analytics'],
  create_content_profile: ['personalization'],
  select_personalized_content: ['personalization'],
};

/** Usercentrics default category slugs (custom slugs are not mapped: send them as `categories`). */
export const USERCENTRICS_CATEGORIES: CategoryMapping = {
  essential: ['essential'],
  functional: ['functional'],
  marketing: ['marketing'],
};

/**
 * Google Consent Mode signals the page reports. `ad_personalization` feeds no category (it only narrows the
 * derived `ad_personalization`); `security_storage` is essential and never gates anything.
 */
export const GOOGLE_CONSENT_MODE_SIGNALS: Readonly<
  Record<ReportedGoogleConsentSignal, readonly ConsentCategory[]>
> = {
  ad_storage: ['marketing'],
  ad_user_data: ['marketing'],
  ad_personalization: [],
  analytics_storage: ['analytics'],
  functionality_storage: ['functional'],
  personalization_storage: ['personalization'],
  security_storage: [],
};

/** Accumulates reported choices per category with the combination rule above. */
export class CategoryAccumulator {
  private readonly states = new Map<ConsentCategory, boolean>();

  report(category: ConsentCategory, granted: boolean): void {
    const previous = this.states.get(category);
    this.states.set(category, previous === undefined ? granted : previous && granted);
  }

  /** Report every code of `choices` found in `mapping`; codes the mapping does not know are ignored. */
  reportMapped(mapping: CategoryMapping, choices: Readonly<Record<string, boolean>>): void {
    for (const [code, granted] of Object.entries(choices)) {
      // Own keys only: a code such as "toString" must not reach the prototype.
      const categories = Object.hasOwn(mapping, code) ? mapping[code] : undefined;
      for (const category of categories ?? []) this.report(category, granted);
    }
  }

  reportGoogleConsentMode(signals: ReportedGoogleConsentMode): void {
    for (const signal of REPORTED_GOOGLE_CONSENT_SIGNALS) {
      const value = signals[signal];
      if (value === undefined) continue;
      for (const category of GOOGLE_CONSENT_MODE_SIGNALS[signal]) this.report(category, value === 'granted');
    }
  }

  /** The merged view; `essential` is always granted (it is not a choice). */
  result(): CategoryStates {
    const out: CategoryStates = { essential: true };
    for (const [category, granted] of this.states) {
      if (category !== 'essential') out[category] = granted;
    }
    return out;
  }
}

/**
 * OneTrust lists only the active (granted) groups. Every group the banner has but the list omits is denied;
 * which groups the banner has comes from `groups` when the SDK sends it, else C0001–C0004 are assumed (C0005
 * Social Media then counts only when it appears as active, so a banner without it does not deny marketing).
 */
export function oneTrustChoices(
  activeGroups: string | readonly string[],
  groups?: readonly string[],
): Record<string, boolean> {
  const active = new Set(
    (typeof activeGroups === 'string' ? activeGroups.split(',') : activeGroups)
      .map((group) => group.trim())
      .filter((group) => group !== ''),
  );
  const known = new Set([...(groups ?? ONETRUST_ASSUMED_GROUPS), ...active]);
  return Object.fromEntries([...known].map((group) => [group, active.has(group)]));
}
