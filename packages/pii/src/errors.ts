/**
 * Errors of the PII package. Each carries a stable string `code`; messages name the setting at fault and
 * what it must be, and never contain a field value, a key or any other PII.
 */
export type PiiErrorCode = 'pii.invalid_config' | 'pii.hmac_key_required' | 'pii.hmac_key_invalid';

export class PiiError extends Error {
  readonly code: PiiErrorCode;
  readonly retryable = false;

  constructor(code: PiiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PiiError';
    this.code = code;
  }
}

/** The `pii_rules` configuration is invalid; `issues` lists each problem as "<path>: <what it must be>". */
export class PiiConfigError extends PiiError {
  readonly issues: readonly string[];

  constructor(issues: readonly string[]) {
    super('pii.invalid_config', `invalid pii_rules: ${issues.join('; ')}`);
    this.name = 'PiiConfigError';
    this.issues = issues;
  }
}
