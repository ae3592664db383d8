import { KmsError, type KmsProviderName, type WrapContext } from './provider';

const MAX_ENTRIES = 16;
const MAX_LENGTH = 256;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * The canonical bytes of a wrap context: JSON of its entries sorted by key. Everything that binds bytes rather
 * than a map binds these (the local provider's GCM associated data, GCP AAD, Vault's derived-key context, the
 * DEK commitment), so the same context always gives the same bytes whatever order the caller built it in, and
 * two different contexts never do.
 */
export function canonicalWrapContext(context: WrapContext): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((key) => [key, context[key]]);
  return Buffer.from(JSON.stringify(Object.fromEntries(sorted)), 'utf8');
}

/**
 * Checks a wrap context before it goes to a provider: 1 to 16 entries of printable ASCII, at most 256
 * characters each. Providers log the context in their audit trails and some limit its size, so a context
 * that breaks these rules is a programming error, reported before any call is made.
 */
export function checkWrapContext(provider: KmsProviderName, context: WrapContext): void {
  const entries = Object.entries(context);
  if (entries.length === 0 || entries.length > MAX_ENTRIES) {
    throw new KmsError(provider, 'kms_misconfigured', `a wrap context needs 1 to ${MAX_ENTRIES} entries`);
  }
  for (const [key, value] of entries) {
    for (const part of [key, value]) {
      if (part.length > MAX_LENGTH || !PRINTABLE_ASCII.test(part)) {
        throw new KmsError(
          provider,
          'kms_misconfigured',
          `wrap context keys and values must be 1 to ${MAX_LENGTH} printable ASCII characters`,
        );
      }
    }
  }
}
