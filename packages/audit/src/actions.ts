import { z } from 'zod';

/**
 * The catalog of audited actions, shared by every writer (management API, auth, DLQ, identity hub, crypto)
 * and by readers (filters, exports). Append-only: an action, once released, is never renamed or removed,
 * because rows carrying it stay in the hash chain for the whole retention window and must keep parsing.
 */
export const AUDIT_ACTIONS = [
  'pipeline.created',
  'pipeline.updated',
  'pipeline.deleted',
  'pipeline.key_rotated',
  'integration.created',
  'integration.updated',
  'integration.deleted',
  'data_layer.updated',
  'user.invited',
  'user.role_changed',
  'user.removed',
  'org.updated',
  'org.ownership_transferred',
  'auth.login',
  'auth.login_failed',
  'auth.logout',
  'auth.refresh_reuse_detected',
  'dlq.replayed',
  'identity.erased',
  'audit.exported',
  'audit.purged',
  'crypto.key_loaded',
  'crypto.key_rotated',
  'crypto.reencrypt_started',
  'crypto.reencrypt_completed',
  'crypto.decrypt_failed',
  'crypto.kms_error',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** The cryptographic events of ARCHITECTURE §4 (contract): metadata only, never keys, PII or ciphertext. */
export const CRYPTO_AUDIT_ACTIONS = [
  'crypto.key_loaded',
  'crypto.key_rotated',
  'crypto.reencrypt_started',
  'crypto.reencrypt_completed',
  'crypto.decrypt_failed',
  'crypto.kms_error',
] as const satisfies readonly AuditAction[];

export type CryptoAuditAction = (typeof CRYPTO_AUDIT_ACTIONS)[number];

/**
 * Actions about the deployment as a whole rather than one org: its encryption keys (every org's data is
 * sealed with them) and the log's own retention. Recorded without an org, they are shown only to whoever runs
 * the deployment (`with_deployment_entries` beside `org_id`); recorded with one, in that org's view.
 */
export const DEPLOYMENT_AUDIT_ACTIONS = [
  ...CRYPTO_AUDIT_ACTIONS,
  'audit.purged',
] as const satisfies readonly AuditAction[];

export const AUDIT_RESOURCE_TYPES = [
  'pipeline',
  'integration',
  'data_layer',
  'user',
  'org',
  'dlq',
  'identity',
  'audit',
  'crypto',
] as const;

export type AuditResourceType = (typeof AUDIT_RESOURCE_TYPES)[number];

interface ActionInfo {
  /** The resource an entry of this action is about, unless the writer names another. */
  readonly resourceType: AuditResourceType;
  readonly description: string;
}

export const AUDIT_ACTION_INFO: Readonly<Record<AuditAction, ActionInfo>> = {
  'pipeline.created': { resourceType: 'pipeline', description: 'A pipeline was created' },
  'pipeline.updated': { resourceType: 'pipeline', description: 'A pipeline was updated' },
  'pipeline.deleted': { resourceType: 'pipeline', description: 'A pipeline was deleted' },
  'pipeline.key_rotated': { resourceType: 'pipeline', description: "A pipeline's key was rotated" },
  'integration.created': { resourceType: 'integration', description: 'An integration was created' },
  'integration.updated': {
    resourceType: 'integration',
    description: 'An integration (or its credentials) was updated',
  },
  'integration.deleted': { resourceType: 'integration', description: 'An integration was deleted' },
  'data_layer.updated': { resourceType: 'data_layer', description: 'The Org Data Layer config was updated' },
  'user.invited': { resourceType: 'user', description: 'A user was invited' },
  'user.role_changed': { resourceType: 'user', description: "A user's role was changed" },
  'user.removed': { resourceType: 'user', description: 'A user was removed' },
  'org.updated': { resourceType: 'org', description: "The organisation's settings were updated" },
  'org.ownership_transferred': {
    resourceType: 'org',
    description: 'Ownership was transferred to another user',
  },
  'auth.login': { resourceType: 'user', description: 'A user logged in' },
  'auth.login_failed': { resourceType: 'user', description: 'A login attempt failed' },
  'auth.logout': { resourceType: 'user', description: 'A user logged out' },
  'auth.refresh_reuse_detected': {
    resourceType: 'user',
    description: "A used refresh token was presented again; all of the user's tokens were revoked",
  },
  'dlq.replayed': { resourceType: 'dlq', description: 'Dead-lettered events were replayed' },
  'identity.erased': { resourceType: 'identity', description: "A visitor's identity data was erased" },
  'audit.exported': { resourceType: 'audit', description: 'The audit log was exported' },
  'audit.purged': { resourceType: 'audit', description: 'Entries past the retention window were purged' },
  'crypto.key_loaded': {
    resourceType: 'crypto',
    description: 'A service started and loaded an encryption key',
  },
  'crypto.key_rotated': {
    resourceType: 'crypto',
    description: 'A new key was deployed (dual-key mode entered)',
  },
  'crypto.reencrypt_started': { resourceType: 'crypto', description: 'A re-encryption job began' },
  'crypto.reencrypt_completed': { resourceType: 'crypto', description: 'A re-encryption job finished' },
  'crypto.decrypt_failed': {
    resourceType: 'crypto',
    description: 'A decryption failed (potential tampering)',
  },
  'crypto.kms_error': { resourceType: 'crypto', description: 'A KMS API call failed' },
};

export const auditActionSchema = z.enum(AUDIT_ACTIONS);
export const auditResourceTypeSchema = z.enum(AUDIT_RESOURCE_TYPES);

export function isCryptoAuditAction(action: string): action is CryptoAuditAction {
  return (CRYPTO_AUDIT_ACTIONS as readonly string[]).includes(action);
}
