/**
 * Errors of the vendors package. Vendor and network failures are never thrown (they are outcomes); these are
 * for configuration that cannot work, found when an integration is set up. Messages name the setting at
 * fault and what it must be, never a credential value.
 */
export type VendorErrorCode =
  | 'vendor.invalid_settings'
  | 'vendor.invalid_credentials'
  | 'vendor.unknown_vendor';

export class VendorError extends Error {
  readonly code: VendorErrorCode;
  readonly retryable = false;

  constructor(code: VendorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VendorError';
    this.code = code;
  }
}

/** Settings or credentials that do not fit the adapter's schema; `issues` reads "<path>: <what it must be>". */
export class VendorConfigError extends VendorError {
  readonly issues: readonly string[];

  constructor(
    code: 'vendor.invalid_settings' | 'vendor.invalid_credentials',
    vendor: string,
    issues: readonly string[],
  ) {
    const what = code === 'vendor.invalid_settings' ? 'settings' : 'credentials';
    super(code, `invalid ${vendor} ${what}: ${issues.join('; ')}`);
    this.name = 'VendorConfigError';
    this.issues = issues;
  }
}
