import type { Queryable } from '@signal/store';
import {
  createDataLayerRepository,
  type DataLayerConfig,
  type DataLayerRepository,
} from './data-layer.repository';
import {
  createIntegrationsRepository,
  type Integration,
  type IntegrationCredentials,
  type IntegrationsRepository,
} from './integrations.repository';
import { createOrgsRepository, type OrgsRepository } from './orgs.repository';
import { createScryptHasher, type PasswordHasher } from './password-hasher';
import {
  createPipelinesRepository,
  type GatewayPipeline,
  type PipelinesRepository,
} from './pipelines.repository';
import { createRefreshTokensRepository, type RefreshTokensRepository } from './refresh-tokens.repository';
import type { ControlPlaneCrypto } from './sealing';
import { type Clock, createUsersRepository, type UsersRepository } from './users.repository';

export interface ControlPlaneOptions {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  /** Seals HMAC secrets and credentials with the current key; opens with whichever key a value names. */
  readonly crypto: ControlPlaneCrypto;
  /** Defaults to the system clock. */
  readonly clock?: Clock;
  /** Defaults to scrypt with `DEFAULT_SCRYPT_COST`; tests inject a cheaper one. */
  readonly hasher?: PasswordHasher;
}

/**
 * The configuration data every service reads, over the database port. Repositories for the Management API,
 * and narrow read methods for the data plane (each service takes only the slice it uses, see the `*Reader`
 * types).
 */
export interface ControlPlane {
  readonly orgs: OrgsRepository;
  readonly users: UsersRepository;
  readonly refreshTokens: RefreshTokensRepository;
  readonly pipelines: PipelinesRepository;
  readonly integrations: IntegrationsRepository;
  readonly dataLayer: DataLayerRepository;
  readonly hasher: PasswordHasher;
  /** Gateway: the pipeline a key authenticates (active or in grace), with decrypted HMAC secrets. */
  findPipelineByKey(key: string): Promise<GatewayPipeline | null>;
  /** Identity hub: cross-domain redirect allowlist. */
  linkedDomains(pipelineId: string): Promise<readonly string[]>;
  /** Processor / delivery: every integration of a pipeline, credentials masked. */
  listIntegrations(pipelineId: string): Promise<Integration[]>;
  /** Delivery: one integration by id (null when it no longer exists). */
  getIntegration(integrationId: string): Promise<Integration | null>;
  /** Delivery: every integration id, for the worker's topic subscriptions. */
  listIntegrationIds(): Promise<string[]>;
  /** Delivery: decrypted credentials, in memory only. */
  getIntegrationCredentials(integrationId: string): Promise<IntegrationCredentials | null>;
  /** Processor: the Org Data Layer config with its version. */
  getDataLayerConfig(orgId: string): Promise<DataLayerConfig>;
}

export type GatewayControlPlaneReader = Pick<ControlPlane, 'findPipelineByKey'>;
export type IdentityControlPlaneReader = Pick<ControlPlane, 'linkedDomains'>;
export type ProcessorControlPlaneReader = Pick<ControlPlane, 'listIntegrations' | 'getDataLayerConfig'>;
export type DeliveryControlPlaneReader = Pick<
  ControlPlane,
  'getIntegration' | 'listIntegrationIds' | 'getIntegrationCredentials'
>;

export function createControlPlane(options: ControlPlaneOptions): ControlPlane {
  const { db, crypto } = options;
  const clock = options.clock ?? (() => new Date());
  const hasher = options.hasher ?? createScryptHasher();
  const users = createUsersRepository({ db, clock, hasher });
  const orgs = createOrgsRepository({ db, clock, users });
  const refreshTokens = createRefreshTokensRepository({ db, clock, users });
  const pipelines = createPipelinesRepository({ db, clock, crypto });
  const integrations = createIntegrationsRepository({ db, clock, crypto });
  const dataLayer = createDataLayerRepository({ db, clock });
  return Object.freeze({
    orgs,
    users,
    refreshTokens,
    pipelines,
    integrations,
    dataLayer,
    hasher,
    findPipelineByKey: (key: string) => pipelines.findByKey(key),
    linkedDomains: (pipelineId: string) => pipelines.linkedDomains(pipelineId),
    listIntegrations: (pipelineId: string) => integrations.listForPipeline(pipelineId),
    getIntegration: (integrationId: string) => integrations.getById(integrationId),
    listIntegrationIds: () => integrations.listIds(),
    getIntegrationCredentials: (integrationId: string) => integrations.credentials(integrationId),
    getDataLayerConfig: (orgId: string) => dataLayer.get(orgId),
  });
}
