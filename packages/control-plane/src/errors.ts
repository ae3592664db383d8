/**
 * The control plane's closed error model. Messages name the rule that was broken and ids at most: never an
 * email, a password, a key, a secret or a credential value.
 */
export type ControlPlaneErrorCode =
  /** The row does not exist (or belongs to another org, which callers must not be able to tell apart). */
  | 'not_found'
  /** A uniqueness rule refused the write (email in the org, pipeline slug, a second running job…). */
  | 'conflict'
  /** Input failed validation; the message names the fields. */
  | 'invalid_input'
  /** The write would leave an org without exactly one owner (demote/remove the owner, invite a second one). */
  | 'owner_required'
  /** An optimistic check failed: the row changed since it was read (e.g. Org Data Layer `expected_version`). */
  | 'version_mismatch'
  /** A row read back from the database does not have the shape this code expects. */
  | 'corrupt_row';

export class ControlPlaneError extends Error {
  override readonly name = 'ControlPlaneError';
  readonly code: ControlPlaneErrorCode;
  /** Control-plane rule violations never succeed when retried unchanged. */
  readonly retryable = false;

  constructor(code: ControlPlaneErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isControlPlaneError(value: unknown): value is ControlPlaneError {
  return value instanceof ControlPlaneError;
}
