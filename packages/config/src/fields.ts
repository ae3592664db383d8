import { isIP } from 'node:net';
import { z } from 'zod';
import { Secret } from './secret';

/**
 * zod field types for configuration values. Each accepts what env (always a string) and signal.yaml
 * (strings, numbers, booleans, lists) can hold, and fails with a message that completes the sentence
 * "<VARIABLE> must be …", so the loader can name the variable in front of it.
 */

/** Raw values as they come from env or YAML. */
export type Raw = string | number | boolean | readonly unknown[] | Record<string, unknown>;

function scalarText(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw.trim();
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  return undefined;
}

export function text(opts: { maxLength?: number; pattern?: RegExp; patternDescription?: string } = {}) {
  const max = opts.maxLength ?? 4096;
  return z.unknown().transform((raw, ctx) => {
    const value = scalarText(raw);
    if (value === undefined || value.length === 0 || value.length > max) {
      ctx.addIssue({ code: 'custom', message: `a non-empty string of at most ${max} characters` });
      return z.NEVER;
    }
    if (opts.pattern && !opts.pattern.test(value)) {
      ctx.addIssue({
        code: 'custom',
        message: opts.patternDescription ?? `a string matching ${opts.pattern}`,
      });
      return z.NEVER;
    }
    return value;
  });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.unknown().transform((raw, ctx): T[number] => {
    const value = scalarText(raw)?.toLowerCase();
    const match = values.find((v) => v === value);
    if (match === undefined) {
      ctx.addIssue({ code: 'custom', message: `one of ${values.join(', ')}` });
      return z.NEVER;
    }
    return match;
  });
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export function bool() {
  return z.unknown().transform((raw, ctx) => {
    const value = scalarText(raw)?.toLowerCase();
    if (value !== undefined && TRUE.has(value)) return true;
    if (value !== undefined && FALSE.has(value)) return false;
    ctx.addIssue({ code: 'custom', message: 'true or false' });
    return z.NEVER;
  });
}

export function int(opts: { min: number; max: number; unit?: string }) {
  const unit = opts.unit ? ` ${opts.unit}` : '';
  return z.unknown().transform((raw, ctx) => {
    const value = scalarText(raw);
    const n = value !== undefined && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < opts.min || n > opts.max) {
      ctx.addIssue({
        code: 'custom',
        message: `a whole number from ${opts.min} to ${opts.max}${unit} (got ${JSON.stringify(value ?? typeof raw)})`,
      });
      return z.NEVER;
    }
    return n;
  });
}

/** A comma-separated list in env, or a YAML sequence. Empty entries are dropped. */
export function list(opts: { item?: (value: string) => string | undefined; itemDescription?: string } = {}) {
  return z.unknown().transform((raw, ctx) => {
    const items = Array.isArray(raw) ? raw.map(scalarText) : (scalarText(raw)?.split(',') ?? [undefined]);
    const out: string[] = [];
    for (const item of items) {
      const trimmed = item?.trim();
      if (trimmed === undefined) {
        ctx.addIssue({ code: 'custom', message: 'a comma-separated list of strings' });
        return z.NEVER;
      }
      if (trimmed.length === 0) continue;
      const problem = opts.item?.(trimmed);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${opts.itemDescription ?? 'a list'} (${problem})` });
        return z.NEVER;
      }
      out.push(trimmed);
    }
    return out;
  });
}

/** A URL with one of the given protocols; secret by default because URLs carry credentials. */
export function url(protocols: readonly string[]) {
  return z.unknown().transform((raw, ctx) => {
    const value = scalarText(raw);
    let parsed: URL | undefined;
    try {
      parsed = value ? new URL(value) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!parsed || !protocols.includes(parsed.protocol.replace(/:$/, ''))) {
      // Never echo the value: connection strings carry passwords.
      ctx.addIssue({
        code: 'custom',
        message: `a URL starting with ${protocols.map((p) => `${p}://`).join(' or ')}`,
      });
      return z.NEVER;
    }
    return new Secret(parsed.toString());
  });
}

/**
 * A 256-bit key as exactly 64 hexadecimal characters. The error reports the length it got, never the
 * characters, so a key never reaches a log through a config error.
 */
export function hexKey() {
  return z.unknown().transform((raw, ctx) => {
    const value = scalarText(raw) ?? '';
    if (!/^[0-9a-fA-F]{64}$/.test(value)) {
      const detail = value.length === 64 ? 'got 64 characters, not all hexadecimal' : `got ${value.length}`;
      ctx.addIssue({ code: 'custom', message: `exactly 64 hexadecimal characters (${detail})` });
      return z.NEVER;
    }
    return new Secret(value.toLowerCase());
  });
}

/** A secret string of at least `minBytes` UTF-8 bytes (e.g. JWT_SECRET). */
export function secretText(opts: { minBytes: number }) {
  return z.unknown().transform((raw, ctx) => {
    const value = typeof raw === 'string' ? raw : undefined;
    const bytes = value === undefined ? 0 : Buffer.byteLength(value, 'utf8');
    if (bytes < opts.minBytes) {
      ctx.addIssue({ code: 'custom', message: `at least ${opts.minBytes} bytes long (got ${bytes})` });
      return z.NEVER;
    }
    return new Secret(value ?? '');
  });
}

/** A host name or domain such as `.example.com` (cookie domains), without scheme, port or path. */
export function domain() {
  return z.unknown().transform((raw, ctx) => {
    const value = scalarText(raw)?.toLowerCase() ?? '';
    if (
      !/^\.?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(
        value,
      )
    ) {
      ctx.addIssue({ code: 'custom', message: 'a domain name such as example.com or .example.com' });
      return z.NEVER;
    }
    return value;
  });
}

export function originItem(value: string): string | undefined {
  if (value === '*') return 'a wildcard origin is not allowed: list each origin';
  try {
    const u = new URL(value);
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.pathname !== '/' || u.search || u.hash) {
      return `${JSON.stringify(value)} is not an origin like https://www.example.com`;
    }
    return undefined;
  } catch {
    return `${JSON.stringify(value)} is not an origin like https://www.example.com`;
  }
}

/** An IP address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.10`). */
export function ipOrCidrItem(value: string): string | undefined {
  const [address = '', prefix, extra] = value.split('/');
  const family = isIP(address);
  const bits = prefix === undefined ? 0 : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  if (family === 0 || extra !== undefined || !(bits <= (family === 4 ? 32 : 128))) {
    return `${JSON.stringify(value.slice(0, 64))} is not an IP address or CIDR range such as 10.0.0.0/8`;
  }
  return undefined;
}

export function brokerItem(value: string): string | undefined {
  return /^[A-Za-z0-9.-]+:\d{1,5}$/.test(value) ? undefined : `${JSON.stringify(value)} is not host:port`;
}

export function hostItem(value: string): string | undefined {
  return /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(
    value,
  )
    ? undefined
    : `${JSON.stringify(value.slice(0, 64))} is not a host name`;
}
