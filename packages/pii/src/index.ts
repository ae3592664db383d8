export { createDigest, type Digest, type HashAlgorithm, MIN_HMAC_KEY_BYTES, sha256Hex } from './digest';
export { PiiConfigError, PiiError, type PiiErrorCode } from './errors';
export {
  type CompileOptions,
  compilePiiRules,
  type PiiOutcome,
  type PiiTransform,
} from './org-rules/compile';
export {
  MASKING_MODES,
  type MaskingMode,
  type PiiRules,
  type PiiRulesInput,
  parsePiiRules,
  piiRulesSchema,
} from './org-rules/config';
export { FIELD_TYPES, type FieldType, inferFieldType } from './org-rules/field-types';
export type { RejectReason } from './outcome';
export type { GoogleEmailRule } from './rules';
export {
  createVendorNormalizer,
  hashFor,
  type NormalizeHints,
  type NormalizeResult,
  normalizeFor,
  type VendorNormalizer,
  type VendorNormalizerOptions,
} from './vendor-normalizer';
export { VENDOR_IDS, type VendorId } from './vendors/profile';
