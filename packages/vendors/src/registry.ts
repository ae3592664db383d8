import type { VendorAdapter, VendorAdapterId } from './adapter';
import { ga4Mp } from './vendors/ga4-mp.adapter';
import { googleAds } from './vendors/google-ads.adapter';
import { linkedinCapi } from './vendors/linkedin-capi.adapter';
import { metaCapi } from './vendors/meta-capi.adapter';
import { pinterestCapi } from './vendors/pinterest-capi.adapter';
import { snapchatCapi } from './vendors/snapchat-capi.adapter';
import { tiktokEvents } from './vendors/tiktok-events.adapter';
import { webhook } from './vendors/webhook.adapter';

/**
 * An adapter whose settings and credentials types are not known statically: what the Delivery Worker holds
 * after looking an integration's vendor up. `createIntegration` validates both with the adapter's own
 * schemas, so the adapter only ever sees what its schemas produced.
 */
export type AnyVendorAdapter = VendorAdapter<unknown, unknown>;

/** Every delivery adapter by vendor id (frozen; adapters are stateless). */
export const vendors: Readonly<Record<VendorAdapterId, AnyVendorAdapter>> = Object.freeze({
  meta: metaCapi,
  ga4: ga4Mp,
  google_ads: googleAds,
  tiktok: tiktokEvents,
  pinterest: pinterestCapi,
  snapchat: snapchatCapi,
  linkedin: linkedinCapi,
  webhook,
});

/** Narrows a stored vendor id (an integration row) to a known adapter id. */
export function isVendorAdapterId(value: string): value is VendorAdapterId {
  return Object.hasOwn(vendors, value);
}
