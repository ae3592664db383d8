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
