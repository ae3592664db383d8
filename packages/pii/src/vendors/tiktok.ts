import { e164Phone, plainEmail, trimOnly } from '../rules';
import { clear, type FieldRule, hashed, type VendorProfile } from './profile';

/**
 * TikTok Events API 2.0 `user`. TikTok documents no external_id rule: it is trimmed and otherwise kept as
 * is, so it hashes to what the pixel's `ttq.identify` hashes for the same id.
 */
export const tiktokProfile: VendorProfile = () =>
  new Map<string, FieldRule>([
    ['email', hashed(plainEmail)],
    ['phone', hashed(e164Phone)],
    ['external_id', hashed(trimOnly)],
    ['ip', clear(trimOnly)],
    ['user_agent', clear(trimOnly)],
    ['ttp', clear(trimOnly)],
    ['ttclid', clear(trimOnly)],
  ]);
