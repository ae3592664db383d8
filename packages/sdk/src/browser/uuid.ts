/** A random (v4) UUID. `crypto.randomUUID` exists only in secure contexts, so plain-HTTP pages fall back. */
export function uuid(): string {
  const c: Crypto | undefined = globalThis.crypto;
  if (c !== undefined && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c !== undefined && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  // Browsers without Web Crypto are long gone; this keeps ids unique (not secret) if one turns up.
  else for (let i = 0; i < 16; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  let hex = '';
  for (const b of bytes) hex += (b + 256).toString(16).slice(1);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
