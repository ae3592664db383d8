import type {
  DataLayerConfig,
  Integration,
  Pipeline,
  PipelineKeyInfo,
  PipelineSecretInfo,
  User,
} from '@signal/control-plane';

/** API JSON shapes (snake_case). Nothing secret is ever part of them: keys and secrets only at creation. */

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export function userJson(user: User) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    must_change_password: user.mustChangePassword,
    created_at: iso(user.createdAt),
    updated_at: iso(user.updatedAt),
  };
}

export function pipelineJson(pipeline: Pipeline) {
  return {
    id: pipeline.id,
    name: pipeline.name,
    slug: pipeline.slug,
    type: pipeline.type,
    enabled: pipeline.enabled,
    allowed_domains: pipeline.allowedDomains,
    linked_domains: pipeline.linkedDomains,
    rate_limit_rps: pipeline.rateLimitRps,
    created_at: iso(pipeline.createdAt),
    updated_at: iso(pipeline.updatedAt),
  };
}

export function keyInfoJson(key: PipelineKeyInfo) {
  return {
    id: key.id,
    hint: key.hint,
    environment: key.environment,
    status: key.status,
    created_at: iso(key.createdAt),
    grace_ends_at: iso(key.graceEndsAt),
  };
}

export function secretInfoJson(secret: PipelineSecretInfo) {
  return {
    id: secret.id,
    status: secret.status,
    created_at: iso(secret.createdAt),
    grace_ends_at: iso(secret.graceEndsAt),
  };
}

export function integrationJson(integration: Integration) {
  return {
    id: integration.id,
    pipeline_id: integration.pipelineId,
    vendor: integration.vendor,
    name: integration.name,
    enabled: integration.enabled,
    settings: integration.settings,
    consent: integration.consent,
    pipeline: integration.pipeline,
    /** Write-only: reads show `{field: "••••1a2b"}` computed when they were written. */
    credentials: integration.credentialsMasked,
    created_at: iso(integration.createdAt),
    updated_at: iso(integration.updatedAt),
  };
}

export function dataLayerJson(config: DataLayerConfig) {
  return {
    version: config.version,
    pii_rules: config.pii_rules,
    bot_filtering: config.bot_filtering,
    routing_rules: config.routing_rules,
    updated_at: iso(config.updated_at),
  };
}

export function pageJson<T, U>(
  page: { data: T[]; nextCursor: string | null; hasMore: boolean },
  map: (item: T) => U,
) {
  return { data: page.data.map(map), next_cursor: page.nextCursor, has_more: page.hasMore };
}
