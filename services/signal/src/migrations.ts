import { auditMigrations } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import { controlPlaneMigrations } from '@signal/control-plane';
import { deliveryWorkerMigrations } from '@signal/delivery-worker';
import { identityHubMigrations } from '@signal/identity-hub';
import { kmsMigrations } from '@signal/kms';
import { managementApiMigrations } from '@signal/management-api';
import { type Migration, storeMigrations } from '@signal/store';

/**
 * Every table of a Signal deployment, in dependency order: what `signal-cli migrate` applies to a
 * PostgreSQL server and what the embedded all-in-one applies to PGlite at start-up. Each package owns its
 * own migrations; ids are namespaced by package and never change once released.
 */
export const ALL_MIGRATIONS: readonly Migration[] = Object.freeze([
  ...storeMigrations,
  ...busMigrations,
  ...auditMigrations,
  ...controlPlaneMigrations,
  ...managementApiMigrations,
  ...deliveryWorkerMigrations,
  ...identityHubMigrations,
  ...kmsMigrations,
]);
