export type ConsentErrorCode = 'consent_invalid_argument';

/**
 * Thrown only for caller bugs (an argument our own code must never produce from browser input). Everything a
 * visitor or a CMP can send is handled as a value: undecodable signals fail the state closed instead.
 */
export class ConsentError extends Error {
  readonly code: ConsentErrorCode;
  readonly retryable = false;

  constructor(code: ConsentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConsentError';
    this.code = code;
  }
}
