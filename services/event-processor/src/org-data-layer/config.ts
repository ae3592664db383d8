import { piiRulesSchema } from '@signal/pii';
import { z } from 'zod';
import { conditionSchema } from './condition';

/**
 * The Org Data Layer configuration as the processor reads it (its own boundary schema: the control plane
 * stores it, the processor validates what it receives). The shapes accept what the control plane writes
 * (`bot_filtering: {enabled, known_bots, user_agent_patterns, ip_ranges}`, routing rules with
 * `integrations`, `action: include|exclude` and `when`) plus the processor's extensions: a bot score
 * threshold and `flag` action, and a routing `condition` in the condition language (`condition.ts`).
 */

const ipOrRange = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], {
  message: 'an IP address or CIDR range such as 203.0.113.0/24',
});

export const botFilteringSchema = z.object({
  enabled: z.boolean().default(true),
  /** Score user agents on the `isbot` list of crawlers, headless browsers and HTTP libraries. */
  known_bots: z.boolean().default(true),
  /** Extra user-agent substrings (case-insensitive) that mark a bot. */
  user_agent_patterns: z.array(z.string().trim().min(2).max(200)).max(200).default([]),
  /** Client addresses or ranges that mark a bot. */
  ip_ranges: z.array(ipOrRange).max(200).default([]),
  /** Weaker browser-side signals (no user agent, implausible user agent, page call without URL). */
  browser_signals: z.boolean().default(true),
  /** Score (0–100) from which an event counts as a bot. */
  threshold: z.int().min(1).max(100).default(50),
  /** `drop` the event, or `flag` it (`properties.signal_bot = {score, signals}`) and deliver it. */
  action: z.enum(['drop', 'flag']).default('drop'),
});
export type BotFilteringConfig = z.output<typeof botFilteringSchema>;

const ROUTING_ACTIONS = { include: 'include', pass: 'include', exclude: 'exclude', drop: 'exclude' } as const;

export const routingRuleSchema = z.object({
  name: z.string().trim().min(1).max(200),
  enabled: z.boolean().default(true),
  /** Integration ids or vendor ids (`meta`, `webhook`) the rule applies to; `*` for all. */
  integrations: z.array(z.string().min(1).max(128)).min(1).max(100).default(['*']),
  /** `exclude` (alias `drop`) keeps matching events from those integrations; `include` (`pass`) lets them through. */
  action: z.enum(['include', 'exclude', 'pass', 'drop']).transform((a) => ROUTING_ACTIONS[a]),
  /** Shorthand conditions; all given must hold. */
  when: z
    .object({
      event_types: z
        .array(z.enum(['track', 'page', 'identify', 'group']))
        .max(4)
        .optional(),
      /** Event names, exact, or a prefix ending in `*` (`Order *`). */
      events: z.array(z.string().min(1).max(200)).max(200).optional(),
    })
    .default({}),
  /** A condition in the condition language, ANDed with `when`. */
  condition: conditionSchema.optional(),
});
export type RoutingRule = z.output<typeof routingRuleSchema>;

export const orgDataLayerConfigSchema = z.object({
  /** Goes up on every change; compiled rules are cached per version. 0 = defaults (never saved). */
  version: z.int().min(0),
  pii_rules: piiRulesSchema.default({
    enabled: true,
    hash_fields: [],
    redact_fields: [],
    hash_algorithm: 'sha256',
  }),
  bot_filtering: botFilteringSchema.default(botFilteringSchema.parse({})),
  routing_rules: z.array(routingRuleSchema).max(200).default([]),
});
export type OrgDataLayerConfig = z.output<typeof orgDataLayerConfigSchema>;
export type OrgDataLayerConfigInput = z.input<typeof orgDataLayerConfigSchema>;
