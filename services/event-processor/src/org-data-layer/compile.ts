import type { CanonicalEvent } from '@signal/events';
import { type OrgDataLayerConfig, orgDataLayerConfigSchema } from '@signal/org-data-layer';
import { compilePiiRules, type PiiOutcome } from '@signal/pii';
import { type BotScorer, compileBotScorer } from './bot-filter';
import { compileRouter, type Router } from './routing';

/** One org's Org Data Layer, compiled once per config version (STYLE: prepare at load, run prepared functions). */
export interface CompiledDataLayer {
  readonly version: number;
  readonly config: OrgDataLayerConfig;
  readonly scoreBot: BotScorer;
  readonly botAction: 'drop' | 'flag';
  /** Hashes and redacts the configured fields; returns a new event (inputs are never mutated). */
  readonly applyPii: (event: CanonicalEvent) => CanonicalEvent;
  readonly route: Router;
}

export interface CompileDataLayerOptions {
  /** Key for `hash_algorithm: hmac-sha256` (≥ 32 bytes). */
  readonly hmacKey?: Uint8Array;
  readonly onPiiOutcome?: (outcome: PiiOutcome) => void;
}

export class DataLayerConfigError extends Error {
  override readonly name = 'DataLayerConfigError';
  readonly code = 'invalid_data_layer_config';
  readonly retryable = false;
}

/** Validates and compiles; throws `DataLayerConfigError` naming the setting at fault (never event data). */
export function compileDataLayer(raw: unknown, options: CompileDataLayerOptions = {}): CompiledDataLayer {
  const parsed = orgDataLayerConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new DataLayerConfigError(`invalid Org Data Layer config: ${problems}`);
  }
  const config = parsed.data;
  let pii: (event: Readonly<Record<string, unknown>>) => Record<string, unknown>;
  try {
    pii = compilePiiRules(config.pii_rules, {
      ...(options.hmacKey === undefined ? {} : { hmacKey: options.hmacKey }),
      ...(options.onPiiOutcome === undefined ? {} : { onOutcome: options.onPiiOutcome }),
    });
  } catch (cause) {
    throw new DataLayerConfigError(
      `invalid Org Data Layer config: pii_rules: ${cause instanceof Error ? cause.message : 'cannot be compiled'}`,
    );
  }
  return Object.freeze({
    version: config.version,
    config,
    scoreBot: compileBotScorer(config.bot_filtering),
    botAction: config.bot_filtering.action,
    applyPii: (event: CanonicalEvent) => pii(event) as unknown as CanonicalEvent,
    route: compileRouter(config.routing_rules),
  });
}
