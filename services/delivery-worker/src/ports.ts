import type { ConsentRequirement } from '@signal/consent';

/**
 * What the worker reads, as ports it owns (STYLE §4): the control plane implements them in production,
 * tests use typed in-memory implementations.
 */

export interface WorkerIntegrationInput {
  readonly id: string;
  /** Vendor adapter id (`meta`, `ga4`, `google_ads`, `tiktok`, `pinterest`, `snapchat`, `linkedin`, `webhook`). */
  readonly vendor: string;
  readonly enabled: boolean;
  /** Non-secret settings, validated by the vendor adapter's schema. */
  readonly settings: unknown;
  readonly consent: ConsentRequirement;
  /** PEM CA certificate(s) trusted in addition to the system roots, for a private endpoint. */
  readonly extraCaPem?: string;
}

export interface WorkerIntegrationSource {
  /** The integration, or null when it no longer exists. */
  getIntegration(id: string): Promise<WorkerIntegrationInput | null>;
  /**
   * Ids of every integration whose `delivery-{id}` topic must be consumed, disabled ones included (their
   * backlog is dead-lettered, replayable once re-enabled, rather than left unread).
   */
  listIntegrationIds(): Promise<readonly string[]>;
}

/**
 * Decrypted credentials of an integration (a JSON object), in memory only. Throws when they cannot be read:
 * an error with `retryable: true` (database down) redelivers the batch; anything else (a ciphertext that does
 * not open, e.g. copied from another row) dead-letters it as `credentials_unreadable`.
 */
export interface CredentialSource {
  getCredentials(integrationId: string): Promise<unknown>;
}

/** The slice of a pino-compatible logger the worker uses. It never logs event values, PII or secrets. */
export interface WorkerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The identity graph's erasure records, as the worker needs them (`createErasedSubjects` of the identity hub
 * implements it): an event of a person erased after it was received is dropped before it reaches a vendor.
 */
export interface ErasureView {
  /** Whether the event is of an erased person and was received before the erasure. Synchronous: in memory. */
  erasedBefore(event: {
    readonly org: string;
    readonly anonymousId?: string | undefined;
    readonly userId?: string | undefined;
    readonly receivedAt: string;
  }): boolean;
  /**
   * Re-reads the records; throws when it cannot (the last view stays in force). `no_tables`: this database
   * has no erasure records to read; `no_key`: none can have been written yet.
   */
  refresh(): Promise<'loaded' | 'no_tables' | 'no_key'>;
}
