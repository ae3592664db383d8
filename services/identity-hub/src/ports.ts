/**
 * What the Identity Hub needs from the rest of Signal, as narrow ports it owns. The control plane implements
 * the pipeline ports (the composition root adapts it); tests use typed in-memory implementations.
 */

/** The pipeline a browser pipeline key (`dk_live_…`/`dk_test_…`) belongs to. */
export interface PipelineRef {
  readonly orgId: string;
  readonly pipelineId: string;
}

export interface PipelineResolver {
  /** The enabled pipeline this key (active, or rotated out but in its grace window) opens; null otherwise. */
  byKey(pipelineKey: string): Promise<PipelineRef | null>;
}

export interface LinkedDomainSource {
  /**
   * The pipeline's cross-domain allowlist: exact host names, optionally `host:port`. Empty for an unknown
   * pipeline. Entries that are not plain host names are ignored by the hub.
   */
  linkedDomains(pipelineId: string): Promise<readonly string[]>;
}

/** The pino-compatible slice the hub logs through. Never given tokens, ids, traits or URLs with tokens. */
export interface IdentityHubLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
