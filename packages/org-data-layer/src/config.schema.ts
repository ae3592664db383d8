import { piiRulesSchema } from '@signal/pii';
import { z } from 'zod';
import { conditionSchema } from './condition';

/**
 * The Org Data Layer configuration: the one schema the Management API validates writes with, the control
 * plane validates stored rows with, and the event processor compiles. Objects are strict, so a misspelt
 * setting is refused with its path instead of being silently ignored.
 *
 * Every setting has a default, so rows written before a setting existed (bot `threshold`, `action`,
 * `browser_signals`; routing `condition`) read back with the behaviour they had: defaults are the processor's
 * long-standing behaviour.
 */

const ipOrRange = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], {
  message: 'an IP address or CIDR range such as 203.0.113.0/24',
});

export const botFilteringSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Score user agents on the `isbot` list of crawlers, headless browsers and HTTP libraries. */
  known_bots: z.boolean().default(true),
  /** Extra user-agent substrings (case-insensitive) that mark a bot. */
  user_agent_patterns: z.array(z.string().trim().min(2).max(200)).max(200).default([]),
  /** Client addresses or ranges that mark a bot. */
  ip_ranges: z.array(ipOrRange).max(200).default([]),
  /** Weaker browser-side signals (no user agent, implausible user agent, page call without URL). */
  browser_signals: z.boolean().default(true),
  /** Score (1–100) from which an event counts as a bot. */
  threshold: z.int().min(1).max(100).default(50),
  /** `drop` the event, or `flag` it (`properties.signal_bot = {score, signals}`) and deliver it. */
  action: z.enum(['drop', 'flag']).default('drop'),
});
export type BotFilteringConfig = z.output<typeof botFilteringSchema>;
export type BotFilteringInput = z.input<typeof botFilteringSchema>;

const ROUTING_ACTIONS = { include: 'include', pass: 'include', exclude: 'exclude', drop: 'exclude' } as const;

export const routingRuleSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  enabled: z.boolean().default(true),
  /** Integration ids or vendor ids (`meta`, `webhook`) the rule applies to; `*` for all. */
  integrations: z.array(z.string().min(1).max(128)).min(1).max(100).default(['*']),
  /**
   * `exclude` (alias `drop`) keeps matching events from those integrations; `include` (alias `pass`) lets
   * them through. Stored and returned in the canonical spelling.
   */
  action: z.enum(['include', 'exclude', 'pass', 'drop']).transform((a) => ROUTING_ACTIONS[a]),
  /** Shorthand conditions; all given must hold. */
  when: z
    .strictObject({
      event_types: z
        .array(z.enum(['track', 'page', 'identify', 'group']))
        .max(4)
        .optional(),
      /** Event names, exact, or a prefix ending in `*` (`Order *`). */
      events: z.array(z.string().min(1).max(200)).max(200).optional(),
    })
    .default({}),
  /** A condition in the condition language (`condition.ts`), ANDed with `when`. */
  condition: conditionSchema.optional(),
});
export type RoutingRule = z.output<typeof routingRuleSchema>;
export type RoutingRuleInput = z.input<typeof routingRuleSchema>;

/** Evaluated in order; for each integration the first matching enabled rule decides, otherwise included. */
export const routingRulesSchema = z.array(routingRuleSchema).max(200);

/** The three rule sections, without bookkeeping: what an admin writes. Absent sections take their defaults. */
export const orgDataLayerRulesSchema = z.strictObject({
  // Factories, so no two parsed configs share (and could mutate) one default object.
  pii_rules: piiRulesSchema.default(() => ({
    enabled: true,
    hash_fields: [],
    redact_fields: [],
    hash_algorithm: 'sha256' as const,
  })),
  bot_filtering: botFilteringSchema.default(() => botFilteringSchema.parse({})),
  routing_rules: routingRulesSchema.default(() => []),
});
export type OrgDataLayerRules = z.output<typeof orgDataLayerRulesSchema>;
export type OrgDataLayerRulesInput = z.input<typeof orgDataLayerRulesSchema>;

/** The rules with the version the processor caches compiled rules by. */
export const orgDataLayerConfigSchema = orgDataLayerRulesSchema.extend({
  /** Goes up on every change; compiled rules are cached per version. 0 = defaults (never saved). */
  version: z.int().min(0),
});
export type OrgDataLayerConfig = z.output<typeof orgDataLayerConfigSchema>;
export type OrgDataLayerConfigInput = z.input<typeof orgDataLayerConfigSchema>;
