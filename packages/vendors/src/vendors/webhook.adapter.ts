import type { CanonicalEvent } from '@signal/events';
import { createVendorNormalizer, type VendorId, type VendorNormalizer } from '@signal/pii';
import { z } from 'zod';
import type { AdapterContext, Preparation, VendorAdapter } from '../adapter';
import { classifyNetworkError, classifyStatus, shared } from '../classify-http';
import { DAY_MS, HOUR_MS, MIB } from '../settings';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './webhook-signature';

/**
 * Generic webhook: one signed `POST` per event, the canonical event as JSON, `Idempotency-Key: <messageId>`
 * so a receiver can drop the duplicates at-least-once delivery produces. Configured fields are normalised
 * and hashed with one of the vendor profiles before they leave.
 */

const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  IDEMPOTENCY_HEADER,
  'authorization',
  'content-type',
  'content-length',
  'host',
  'transfer-encoding',
  'connection',
]);

/** The `@signal/pii` vendor profiles a webhook can hash with. */
const PROFILES = [
  'meta',
  'google',
  'tiktok',
  'snapchat',
  'pinterest',
  'linkedin',
] as const satisfies readonly VendorId[];

const PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+){0,7}$/;
const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const DEFAULT_HASHED_FIELDS: Readonly<Record<string, string>> = {
  'traits.email': 'em',
  'traits.phone': 'ph',
  'properties.email': 'em',
  'properties.phone': 'ph',
};

const urlSchema = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.hash === '';
  } catch {
    return false;
  }
}, 'must be an https URL without credentials or fragment');

const settingsSchema = z
  .strictObject({
    url: urlSchema,
    /** Fields hashed before sending: event path (`traits.email`) → field of the `profile` (`em`). */
    hashing: z
      .strictObject({
        profile: z.enum(PROFILES).default('meta'),
        fields: z
          .record(
            z
              .string()
              .regex(PATH, 'must be a dotted path of at most 8 segments')
              .refine(
                (path) => !path.split('.').some((s) => FORBIDDEN_SEGMENTS.has(s)),
                'must not address a prototype',
              ),
            z.string().min(1),
          )
          .default(DEFAULT_HASHED_FIELDS),
      })
      .default({ profile: 'meta', fields: DEFAULT_HASHED_FIELDS }),
    /** Extra non-secret headers (secrets belong in the credentials). */
    headers: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z0-9-]{1,64}$/, 'header names are 1-64 letters, digits or -')
          .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'this header is set by Signal'),
        z
          .string()
          .regex(/^[\x20-\x7e]{0,1024}$/, 'header values are printable ASCII, at most 1024 characters'),
      )
      .default({}),
    eventTypes: z
      .array(z.enum(['track', 'page', 'identify', 'group']))
      .min(1)
      .default(['track', 'page', 'identify', 'group']),
    /** Events older than this are dead-lettered instead of sent. Default 30 days. */
    maxEventAgeMs: z
      .int()
      .min(HOUR_MS)
      .max(400 * DAY_MS)
      .default(30 * DAY_MS),
    maxBodyBytes: z
      .int()
      .min(16 * 1024)
      .max(16 * MIB)
      .default(MIB),
  })
  .superRefine((settings, ctx) => {
    const known = new Set(createVendorNormalizer(settings.hashing.profile).fields);
    for (const [path, field] of Object.entries(settings.hashing.fields)) {
      if (!known.has(field)) {
        ctx.addIssue({
          code: 'custom',
          path: ['hashing', 'fields', path],
          message: `must be a field of the ${settings.hashing.profile} profile (${[...known].join(', ')})`,
        });
      }
    }
  });

const signingSecret = z
  .string()
  .min(32, 'signing secrets must be at least 32 characters')
  .max(1024)
  .regex(/^[\x21-\x7e]+$/, 'signing secrets are printable ASCII without spaces');

const credentialsSchema = z.strictObject({
  signingSecret,
  /** Further secrets signed with during a rotation (one extra signature each). */
  additionalSigningSecrets: z.array(signingSecret).max(2).default([]),
  /** Sent as `Authorization: Bearer` when the receiver also wants a token. */
  bearerToken: z
    .string()
    .min(8)
    .max(4096)
    .regex(/^[\x21-\x7e]+$/)
    .optional(),
});

export type WebhookSettings = z.output<typeof settingsSchema>;
export type WebhookCredentials = z.output<typeof credentialsSchema>;

type MutableTree = Record<string, unknown>;

function isTree(value: unknown): value is MutableTree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Hashes (or removes) the value at `path` in place; paths are validated and never touch prototypes. */
function hashAt(root: MutableTree, path: string, field: string, normalizer: VendorNormalizer): void {
  const segments = path.split('.');
  const last = segments.pop();
  if (last === undefined) return;
  let node: unknown = root;
  for (const segment of segments) {
    if (!isTree(node) || !Object.hasOwn(node, segment)) return;
    node = node[segment];
  }
  if (!isTree(node) || !Object.hasOwn(node, last)) return;
  const value = node[last];
  if (value === null || value === undefined || typeof value === 'boolean') return;
  const result = normalizer.normalize(field, value);
  if (result.ok) node[last] = result.hash ?? result.normalized;
  // A value that cannot be normalised is removed: it must not leave in clear.
  else delete node[last];
}

function prepare(
  event: CanonicalEvent,
  ctx: AdapterContext<WebhookSettings, WebhookCredentials>,
): Preparation {
  if (!ctx.settings.eventTypes.includes(event.type)) {
    return {
      ok: false,
      kind: 'dropped',
      reason: 'unsupported_event_type',
      detail: `${event.type} calls are not sent`,
    };
  }
  const copy = structuredClone(event) as unknown as MutableTree;
  for (const [path, field] of Object.entries(ctx.settings.hashing.fields))
    hashAt(copy, path, field, ctx.normalizer);
  return { ok: true, payload: copy };
}

function logUrl(value: string): string {
  const url = new URL(value);
  return `${url.origin}${url.pathname}${url.search === '' ? '' : '?[redacted]'}`;
}

export const webhook: VendorAdapter<WebhookSettings, WebhookCredentials> = {
  id: 'webhook',
  displayName: 'Signed webhook',
  settingsSchema,
  credentialsSchema,
  piiProfile: (settings) => settings.hashing.profile,
  limits: (settings) => ({
    // One event per request: the idempotency key is the event's message id.
    maxBatchSize: 1,
    maxBodyBytes: settings.maxBodyBytes,
    maxEventBytes: settings.maxBodyBytes - 4096,
    maxEventAgeMs: settings.maxEventAgeMs,
    maxFutureSkewMs: HOUR_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials, now }) {
    const entry = batch[0];
    if (entry === undefined || batch.length !== 1)
      throw new RangeError('webhook requests carry exactly one event');
    const body = JSON.stringify(entry.payload);
    const timestamp = String(now);
    return {
      url: settings.url,
      logUrl: logUrl(settings.url),
      method: 'POST',
      headers: {
        ...settings.headers,
        'content-type': 'application/json',
        'user-agent': 'Signal-Webhook/1',
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: signWebhook(
          [credentials.signingSecret, ...credentials.additionalSigningSecrets],
          timestamp,
          body,
        ),
        [IDEMPOTENCY_HEADER]: entry.event.messageId,
        ...(credentials.bearerToken === undefined
          ? {}
          : { authorization: `Bearer ${credentials.bearerToken}` }),
      },
      body,
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    return shared(classifyStatus(result, now), batch.length);
  },
};
