import { isAuditError } from '@signal/audit';
import { isBusError } from '@signal/bus';
import { isCacheError } from '@signal/cache';
import { isControlPlaneError } from '@signal/control-plane';
import { HttpError, isHttpError } from '@signal/http';
import { isIdentityHubError } from '@signal/identity-hub';
import { isStoreError } from '@signal/store';

/**
 * The one mapping from the errors of the packages this service uses to the API's error contract. Messages of
 * control-plane and audit errors are written for callers (field names and rules, never values); anything
 * else becomes a bare 500/503 and is logged by the router with its cause.
 */
export function toHttpError(error: unknown): HttpError | undefined {
  if (isHttpError(error)) return error;
  if (isControlPlaneError(error)) {
    switch (error.code) {
      case 'not_found':
        return new HttpError('not_found', error.message);
      case 'conflict':
      case 'owner_required':
      case 'version_mismatch':
        return new HttpError('conflict', error.message);
      case 'invalid_input':
        return new HttpError('validation_failed', error.message);
      case 'corrupt_row':
        return new HttpError('internal', 'internal error', { cause: error });
    }
  }
  if (isAuditError(error)) {
    switch (error.code) {
      case 'audit.invalid_query':
      case 'audit.invalid_cursor':
        return new HttpError('bad_request', error.message);
      default:
        return new HttpError(error.retryable ? 'unavailable' : 'internal', 'the audit log is unavailable', {
          cause: error,
        });
    }
  }
  if (isIdentityHubError(error)) {
    switch (error.code) {
      case 'invalid_subject':
        return new HttpError('validation_failed', error.message);
      case 'graph_unavailable':
      case 'single_use_unavailable':
        return new HttpError('unavailable', 'the identity graph is unavailable, retry later', {
          cause: error,
        });
      case 'invalid_config':
      case 'corrupt_record':
        return new HttpError('internal', 'internal error', { cause: error });
    }
  }
  if ((isStoreError(error) || isCacheError(error) || isBusError(error)) && error.retryable) {
    return new HttpError('unavailable', 'a backing service is unavailable, retry later', { cause: error });
  }
  return undefined;
}
