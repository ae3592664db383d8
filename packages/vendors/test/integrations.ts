import type { CanonicalEvent } from '@signal/events';
import { createIntegration, type Integration, type VendorAdapterId, vendors } from '../src/index';

/** Credentials used by the table tests; none of them may ever show up in an outcome or a log line. */
export const CREDENTIALS: Readonly<Record<VendorAdapterId, Record<string, unknown>>> = {
  meta: { accessToken: 'EAAGm0PX4ZCpsBA-meta-secret-token-1' },
  ga4: { apiSecret: 'ga4-secret-Zq8Lm2Nx5Kp0' },
  google_ads: {
    accessToken: 'ya29.google-secret-access-token',
    developerToken: 'google-secret-developer-token',
  },
  tiktok: { accessToken: 'tiktok-secret-access-token-42' },
  pinterest: { accessToken: 'pina-secret-conversion-token-42' },
  snapchat: { accessToken: 'snap-secret-capi-token-42' },
  linkedin: { accessToken: 'AQX-linkedin-secret-token-42' },
  webhook: {
    signingSecret: 'whsec-0123456789abcdefghijklmnopqrstuv',
    bearerToken: 'webhook-secret-bearer-42',
  },
};

/** Every string credential of every vendor. */
export const ALL_SECRETS: readonly string[] = Object.values(CREDENTIALS).flatMap((c) =>
  Object.values(c).filter((v): v is string => typeof v === 'string'),
);

function settings(vendor: VendorAdapterId, origin: string): Record<string, unknown> {
  switch (vendor) {
    case 'meta':
      return { pixelId: '1234567890', endpoint: origin };
    case 'ga4':
      return { measurementId: 'G-TEST1234', endpoint: origin };
    case 'google_ads':
      return { customerId: '1234567890', conversionActions: { purchase: '987654321' }, endpoint: origin };
    case 'tiktok':
      return { pixelCode: 'CABCDEF1234567890', endpoint: origin };
    case 'pinterest':
      return { adAccountId: '549755885175', endpoint: origin };
    case 'snapchat':
      return { pixelId: '5bf81ee1-15b1-4dc1-b636-d7dae49b950e', endpoint: origin };
    case 'linkedin':
      return { conversionRules: { purchase: '24680' }, endpoint: origin };
    case 'webhook':
      return { url: `${origin}/hooks/signal` };
  }
}

/** An integration of `vendor` whose endpoint is the local sink at `origin`. */
export function integrationFor(
  vendor: VendorAdapterId,
  origin: string,
  extra: Record<string, unknown> = {},
): Integration {
  return createIntegration(vendors[vendor], {
    settings: { ...settings(vendor, origin), ...extra },
    credentials: CREDENTIALS[vendor],
  });
}

/** A 2xx body each vendor sends for a fully accepted request. */
export function successBody(vendor: VendorAdapterId): unknown {
  switch (vendor) {
    case 'meta':
      return { events_received: 1, fbtrace_id: 'trace' };
    case 'tiktok':
      return { code: 0, message: 'OK' };
    case 'snapchat':
      return { status: 'VALID' };
    default:
      return {};
  }
}

/** The rows of a recorded request body, whatever the vendor calls them. */
export function rowsOf(vendor: VendorAdapterId, body: string): unknown[] {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  const list = (key: string): unknown[] => {
    const value = parsed[key];
    if (!Array.isArray(value)) throw new Error(`no ${key}[] in the ${vendor} body`);
    return value;
  };
  switch (vendor) {
    case 'ga4':
      return list('events');
    case 'google_ads':
      return list('conversions');
    case 'linkedin':
      return list('elements');
    case 'webhook':
      return [parsed];
    default:
      return list('data');
  }
}

/** The message id a row carries as the vendor's dedup id. */
export function dedupIdOf(vendor: VendorAdapterId, row: unknown): unknown {
  const r = row as Record<string, unknown>;
  switch (vendor) {
    case 'ga4':
      return (r.params as Record<string, unknown>).event_id;
    case 'google_ads':
      return r.orderId;
    case 'linkedin':
      return r.eventId;
    case 'webhook':
      return r.messageId;
    default:
      return r.event_id;
  }
}

export const VENDOR_IDS = Object.keys(vendors) as VendorAdapterId[];

/** Vendors that receive the client IP and so guard it. */
export const IP_VENDORS: readonly VendorAdapterId[] = ['meta', 'tiktok', 'pinterest', 'snapchat'];

export type Mutator = (draft: CanonicalEvent) => void;
