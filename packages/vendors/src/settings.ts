import { z } from 'zod';

/**
 * Settings parts every adapter shares. An endpoint override points an integration at a local sink (tests,
 * the embedded demo's HTTPS "vendor") or a regional host; it must be https, since the transport refuses
 * anything else.
 */
export const endpointSchema = z
  .string()
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'https:' && url.search === '' && url.hash === '' && url.username === '';
    } catch {
      return false;
    }
  }, 'must be an https URL without query, fragment or credentials')
  .transform((value) => value.replace(/\/+$/, ''));

/** Per-integration event names: event name as sent, or its standard (GA4) name → the vendor's name. */
export const eventMapSchema = z
  .record(z.string().min(1).max(256), z.string().min(1).max(256))
  .refine((map) => Object.keys(map).length <= 500, 'at most 500 entries');

/** The base URL: the override when set, else the vendor's production origin. */
export function baseUrl(endpoint: string | undefined, production: string): string {
  return endpoint ?? production;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** Default allowance for a server clock ahead of the delivery worker's. */
export const DEFAULT_FUTURE_SKEW_MS = 10 * 60_000;
export const KIB = 1024;
export const MIB = 1024 * KIB;

/** A credential string: present, of plausible length, without whitespace or control characters. */
export function secretSchema(what: string) {
  return z
    .string()
    .min(8, `${what} must be at least 8 characters`)
    .max(4096, `${what} must be at most 4096 characters`)
    .regex(/^[\x21-\x7e]+$/, `${what} must be printable ASCII without spaces`);
}
