import type { CanonicalEvent } from '@signal/events';
import { z } from 'zod';
import type { AdapterContext, Payload, Preparation, VendorAdapter } from '../adapter';
import { readClickIds } from '../canonical/click-ids';
import { readCommerce } from '../canonical/commerce';
import { resolveEventName } from '../canonical/event-name';
import { readPerson } from '../canonical/person';
import { eventTimeMs } from '../canonical/time';
import { classifyNetworkError, classifyStatus, isRecord, parseJson, shared } from '../classify-http';
import { compact } from '../compact';
import { piiValue, refuse } from '../guards';
import { bisect, deadLetter, delivered, resend, retry, type Verdict } from '../outcome';
import { DAY_MS, DEFAULT_FUTURE_SKEW_MS, endpointSchema, MIB, secretSchema } from '../settings';

/**
 * LinkedIn Conversions API: `POST https://api.linkedin.com/rest/conversionEvents` as a Rest.li
 * `BATCH_CREATE`, with a pinned `LinkedIn-Version` (each monthly version is supported about a year; a sunset
 * one answers 426 → `api_version_deprecated`). A bad row fails the whole batch with 422, none of it created,
 * naming the row indices: those rows are dead-lettered and the others go again at once in a follow-up request
 * (`settleBatch`), not as a retry that would cost each of them a delivery attempt. A 422 naming no row halves
 * the batch until the bad row is alone.
 */

const settingsSchema = z.strictObject({
  /** Event name as sent, or its standard (GA4) name → conversion rule id. Unmapped events are not sent. */
  conversionRules: z
    .record(
      z.string().min(1).max(256),
      z.string().regex(/^\d{1,20}$/, 'must be a numeric conversion rule id'),
    )
    .refine((map) => Object.keys(map).length > 0, 'map at least one event to a conversion rule'),
  apiVersion: z
    .string()
    .regex(/^20\d{2}(0[1-9]|1[0-2])$/, 'must be a LinkedIn-Version such as 202607')
    .default('202607'),
  endpoint: endpointSchema.optional(),
});

const credentialsSchema = z.strictObject({
  /** OAuth2 token with the rw_conversions scope, provided fresh by the credential store. */
  accessToken: secretSchema('accessToken'),
});

export type LinkedInSettings = z.output<typeof settingsSchema>;
export type LinkedInCredentials = z.output<typeof credentialsSchema>;

function prepare(
  event: CanonicalEvent,
  ctx: AdapterContext<LinkedInSettings, LinkedInCredentials>,
): Preparation {
  const { settings, normalizer } = ctx;
  const rule = resolveEventName(event, { table: {}, overrides: settings.conversionRules });
  if (!rule.ok) return { ok: false, kind: 'dropped', reason: rule.reason, detail: rule.detail };

  const person = readPerson(event);
  const field = (key: string, value: string | undefined) => piiValue(normalizer, key, value);
  const userIds: Payload[] = [];
  const email = field('SHA256_EMAIL', person.email);
  if (email !== undefined) userIds.push({ idType: 'SHA256_EMAIL', idValue: email });
  const liFatId = readClickIds(event).liFatId;
  if (liFatId !== undefined)
    userIds.push({ idType: 'LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID', idValue: liFatId });

  const info = compact({
    firstName: field('userInfo.firstName', person.firstName),
    lastName: field('userInfo.lastName', person.lastName),
    title: field('userInfo.title', person.title),
    companyName: field('userInfo.companyName', person.company),
    countryCode: field('userInfo.countryCode', person.country),
  });
  // LinkedIn matches on userInfo only with both names.
  const userInfo = info.firstName !== undefined && info.lastName !== undefined ? info : undefined;
  if (userIds.length === 0 && userInfo === undefined) {
    return refuse('missing_identifiers', 'needs an e-mail, li_fat_id, or first and last name');
  }

  const commerce = readCommerce(event);
  return {
    ok: true,
    payload: compact({
      conversion: `urn:lla:llaPartnerConversion:${rule.name}`,
      conversionHappenedAt: eventTimeMs(event) ?? ctx.now,
      conversionValue:
        commerce.value !== undefined && commerce.currency !== undefined
          ? { currencyCode: commerce.currency, amount: String(commerce.value) }
          : undefined,
      eventId: event.messageId,
      // userIds is required, even empty.
      user: compact({ userIds, userInfo }),
    }),
  };
}

/** `Index: 3, ERROR :: <message>` lines of a 422 answer. */
function rejectedRows(body: string): Map<number, string> {
  const parsed = parseJson(body);
  const message = isRecord(parsed) && typeof parsed.message === 'string' ? parsed.message : body;
  const rows = new Map<number, string>();
  for (const match of message.matchAll(/Index: (\d+), ERROR :: (.*?)(?:\n|$)/g)) {
    const [, index, text] = match;
    if (index !== undefined && !rows.has(Number(index))) rows.set(Number(index), text ?? '');
  }
  return rows;
}

/** Rest.li BATCH_CREATE may answer per element (`elements[i].status`). */
function perElement(body: string, count: number): Verdict[] {
  const verdicts = shared(delivered, count);
  const parsed = parseJson(body);
  if (!isRecord(parsed) || !Array.isArray(parsed.elements)) return verdicts;
  parsed.elements.slice(0, count).forEach((element: unknown, index) => {
    if (!isRecord(element) || typeof element.status !== 'number') return;
    const { status } = element;
    if (status >= 200 && status < 300) return;
    verdicts[index] =
      status === 429
        ? retry('rate_limited')
        : status >= 500
          ? retry('vendor_unavailable')
          : deadLetter('validation_failed', `element status ${status}`);
  });
  return verdicts;
}

export const linkedinCapi: VendorAdapter<LinkedInSettings, LinkedInCredentials> = {
  id: 'linkedin',
  displayName: 'LinkedIn Conversions API',
  settingsSchema,
  credentialsSchema,
  piiProfile: () => 'linkedin',
  limits: () => ({
    maxBatchSize: 5000,
    maxBodyBytes: 8 * MIB,
    maxEventBytes: 16 * 1024,
    maxEventAgeMs: 90 * DAY_MS,
    maxFutureSkewMs: DEFAULT_FUTURE_SKEW_MS,
  }),
  prepare,
  buildRequest(batch, { settings, credentials }) {
    const url = `${settings.endpoint ?? 'https://api.linkedin.com'}/rest/conversionEvents`;
    return {
      url,
      logUrl: url,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${credentials.accessToken}`,
        'linkedin-version': settings.apiVersion,
        'x-restli-protocol-version': '2.0.0',
        'x-restli-method': 'BATCH_CREATE',
      },
      body: JSON.stringify({ elements: batch.map((entry) => entry.payload) }),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error') return shared(classifyNetworkError(result.error), batch.length);
    if (result.ok) return perElement(result.body, batch.length);
    if (result.status === 426) return shared(deadLetter('api_version_deprecated'), batch.length);
    if (result.status === 422) {
      const rows = rejectedRows(result.body);
      const named = [...rows.keys()].some((index) => index < batch.length);
      if (!named) return shared(bisect(deadLetter('validation_failed')), batch.length);
      return batch.map((_, index) => {
        const message = rows.get(index);
        return message === undefined ? resend : deadLetter('validation_failed', message);
      });
    }
    if (result.status === 400) return shared(deadLetter('validation_failed'), batch.length);
    return shared(classifyStatus(result, now), batch.length);
  },
};
