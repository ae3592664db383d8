import { z } from 'zod';

/**
 * The canonical bytes of a wrap context: JSON of its entries sorted by key. Providers that take bytes (the
 * local provider's GCM associated data, GCP AAD, Vault's derived-key context) and the DEK commitment all bind
 * these bytes, so two contexts with the same entries always agree and two different ones never do.
 */
export function canonicalWrapContext(context: Readonly<Record<string, string>>): Buffer {
  const entries = Object.keys(context)
    .sort()
    .map((key) => [key, context[key]]);
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

/** Wrap contexts are short ASCII metadata (providers log them): validated before any provider sees one. */
export const wrapContextSchema = z.record(
  z.string().regex(/^[a-z_]{1,64}$/),
  z.string().regex(/^[\x20-\x7e]{1,256}$/),
);
