import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ConfigError, loadConfig, SETTINGS, type SettingName } from '@signal/config';
import { repoRoot } from '@signal/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  InterpolationError,
  interpolate,
  mergeCompose,
  readComposeFile,
  readDotEnv,
  serviceEnvironment,
} from './support/compose';
import { TemplateError } from './support/go-template';
import { type Manifest, renderChart, type Values } from './support/helm';

/**
 * Static checks of deploy/: there is no Docker engine or helm binary here, so the compose files are read the
 * way compose reads them (merge keys, interpolation from .env), the chart is rendered with the Go-template
 * subset in ./support/go-template, and both are held to what the services need: every variable a service
 * requires, named as @signal/config's SETTINGS names it, and accepted by the real `loadConfig`.
 */

const root = repoRoot();
const deployDir = join(root, 'deploy');
const chartDir = join(deployDir, 'helm', 'signal');
const composeDir = join(deployDir, 'compose');

const SIGNAL_SERVICES = [
  'ingestion-gateway',
  'event-processor',
  'delivery-worker',
  'identity-hub',
  'management-api',
] as const;
type SignalService = (typeof SIGNAL_SERVICES)[number];

/** What every service reads to run in production; typed against SETTINGS so a rename breaks the build. */
const COMMON_ENV = [
  'ENCRYPTION_KEY',
  'ENCRYPTION_KEY_PREVIOUS',
  'ENCRYPTION_PROVIDER',
  'REQUIRE_ENCRYPTION',
  'DATABASE_URL',
  'DB_MAX_CONNS',
  'REDIS_URL',
  'REDIS_TLS_ENABLED',
  'BUS',
  'KAFKA_BROKERS',
  'KAFKA_TLS_ENABLED',
  'KAFKA_REPLICATION_FACTOR',
  'KAFKA_RAW_EVENTS_PARTITIONS',
  'KAFKA_DELIVERY_PARTITIONS',
  'KAFKA_DLQ_PARTITIONS',
  'SIGNAL_NAMESPACE',
  'LOG_LEVEL',
  'PORT',
  'TLS_MIN_VERSION',
] as const satisfies readonly SettingName[];

const SERVICE_ENV: Record<SignalService, readonly SettingName[]> = {
  'ingestion-gateway': [
    'COOKIE_DOMAIN',
    'CORS_ORIGINS',
    'TRUSTED_PROXY_HOPS',
    'MAX_BATCH_SIZE',
    'MAX_PAYLOAD_SIZE',
    'MAX_BUFFERED_BODY_BYTES',
    'RATE_LIMIT_RPS',
    'PIPELINE_KEY_CACHE_TTL',
  ],
  'event-processor': [],
  'delivery-worker': [
    'RETRY_MAX_ATTEMPTS',
    'RETRY_BACKOFF_BASE',
    'RATE_LIMIT_PER_SECOND',
    'DELIVERY_ALLOWED_PRIVATE_CIDRS',
  ],
  'identity-hub': ['COOKIE_DOMAIN', 'IDENTITY_PUBLIC_HOSTS', 'IDENTITY_TOKEN_TTL'],
  'management-api': [
    'JWT_SECRET',
    'ACCESS_TOKEN_TTL',
    'REFRESH_TOKEN_TTL',
    'SESSION_MAX_AGE',
    'SIGNAL_OPERATOR_ORG',
  ],
};

function requiredEnv(service: SignalService): readonly string[] {
  return [...COMMON_ENV, ...SERVICE_ENV[service]];
}

/** Names a container may set besides the settings: Node's own. */
const NODE_ENV_NAMES = new Set(['NODE_ENV', 'NODE_OPTIONS']);
const KNOWN_NAMES = new Set<string>([...Object.keys(SETTINGS), ...NODE_ENV_NAMES]);

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const emptyDir = mkdtempSync(join(tmpdir(), 'signal-deploy-test-'));
afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));

/** The real loader, on exactly this environment (no signal.yaml: an empty working directory). */
function load(env: Record<string, string>) {
  return loadConfig({ env, cwd: emptyDir });
}

function configProblems(env: Record<string, string>): readonly string[] {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

// ── YAML ─────────────────────────────────────────────────────────────────────────────────────────────

describe('deploy/ YAML files', () => {
  const templatesDir = join(chartDir, 'templates');
  const yamlFiles = walk(deployDir).filter(
    (f) => /\.ya?ml$/.test(f) && !f.startsWith(templatesDir) && !f.includes(`${join('compose', 'certs')}`),
  );

  it('finds the compose files, Chart.yaml and values.yaml', () => {
    const names = yamlFiles.map((f) => relative(deployDir, f)).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        'compose/docker-compose.yml',
        'compose/docker-compose.tls.yml',
        'helm/signal/Chart.yaml',
        'helm/signal/values.yaml',
      ]),
    );
  });

  it.each(yamlFiles.map((f) => [relative(deployDir, f), f]))('%s parses as YAML', (_name, file) => {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'), { merge: true })) {
      expect(doc.errors).toEqual([]);
      expect(doc.warnings).toEqual([]);
    }
  });
});

// ── Dockerfile ───────────────────────────────────────────────────────────────────────────────────────

interface Stage {
  readonly name: string;
  readonly from: string;
  readonly instructions: readonly { readonly op: string; readonly args: string }[];
}

/** Stages of a Dockerfile (line continuations joined, comments dropped, ARG defaults substituted in FROM). */
function dockerStages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: { name: string; from: string; instructions: { op: string; args: string }[] }[] = [];
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const argText = rest.join(' ');
    if (op.toUpperCase() === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = argText.split('=');
      args.set(name, value);
    } else if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(argText);
      const image = (m?.[1] ?? '').replace(/\$\{(\w+)\}/g, (_x, n: string) => args.get(n) ?? '');
      stages.push({ name: m?.[2] ?? `#${stages.length}`, from: image, instructions: [] });
    } else {
      stages[stages.length - 1]?.instructions.push({ op: op.toUpperCase(), args: argText });
    }
  }
  return stages;
}

describe('deploy/docker/Dockerfile', () => {
  const dockerfile = readFileSync(join(deployDir, 'docker', 'Dockerfile'), 'utf8');
  const stages = dockerStages(dockerfile);
  const byName = new Map(stages.map((s) => [s.name, s]));

  /** The chain of stages a stage builds on, itself first, ending at an image. */
  function lineage(name: string): Stage[] {
    const chain: Stage[] = [];
    let stage = byName.get(name);
    while (stage) {
      chain.push(stage);
      stage = byName.get(stage.from);
    }
    return chain;
  }

  it('is multi-stage: a build stage installs from the lockfile and bundles; runtimes copy only the bundle', () => {
    const build = byName.get('build');
    expect(build?.instructions.some((i) => i.op === 'RUN' && i.args.includes('--frozen-lockfile'))).toBe(
      true,
    );
    expect(build?.instructions.some((i) => i.op === 'RUN' && i.args.includes('deploy/build/bundle.ts'))).toBe(
      true,
    );
  });

  it.each([...SIGNAL_SERVICES, 'signal'])(
    'target %s: Node 24 base, non-root USER, production, health check',
    (svc) => {
      const chain = lineage(svc);
      expect(chain.length).toBeGreaterThan(0);
      const base = chain[chain.length - 1]?.from ?? '';
      expect(base).toMatch(/^node:24[.-]/);
      const all = chain.flatMap((s) => s.instructions);
      // The user in force is the last USER of the target itself (instructions of the target come first).
      const user = chain[0]?.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
      expect(user).toBeDefined();
      expect(user).not.toMatch(/^(root|0)(:|$)/);
      expect(all.some((i) => i.op === 'ENV' && /NODE_ENV=production/.test(i.args))).toBe(true);
      const health = all.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
      expect(health).toContain('/health/live');
      expect(chain[0]?.instructions.some((i) => i.op === 'COPY' && i.args.includes(`/out/${svc} /app`))).toBe(
        true,
      );
      expect(chain[0]?.instructions.some((i) => i.op === 'CMD' && i.args.includes('/app/main.js'))).toBe(
        true,
      );
    },
  );

  it('ships the files it copies', () => {
    for (const file of ['healthcheck.mjs', 'signal-cli', 'Dockerfile.dockerignore']) {
      expect(existsSync(join(deployDir, 'docker', file)), file).toBe(true);
    }
    expect(statSync(join(deployDir, 'docker', 'signal-cli')).mode & 0o111).not.toBe(0);
  });
});

// ── docker compose ───────────────────────────────────────────────────────────────────────────────────

describe('deploy/compose', () => {
  const compose = readComposeFile(join(composeDir, 'docker-compose.yml'));
  const services = compose.services as Record<string, Record<string, unknown>>;
  const example = readDotEnv(join(composeDir, '.env.example'));
  /** .env.example with its REPLACE_ME placeholders replaced by valid values, as an operator would. */
  const filled: Record<string, string> = {
    ...example,
    ENCRYPTION_KEY: hex(32),
    JWT_SECRET: hex(32),
    POSTGRES_PASSWORD: hex(24),
    REDIS_PASSWORD: hex(24),
  };

  it('runs Kafka in KRaft mode, PostgreSQL 16 and Redis 7, each with a health check', () => {
    expect(String(services.postgres?.image)).toMatch(/^postgres:16/);
    expect(String(services.redis?.image)).toMatch(/^redis:7/);
    const kafkaEnv = serviceEnvironment(services.kafka ?? {}, filled);
    expect(kafkaEnv.KAFKA_PROCESS_ROLES).toContain('controller');
    expect(Object.keys(services)).not.toContain('zookeeper');
    for (const infra of ['postgres', 'redis', 'kafka']) {
      expect(services[infra]?.healthcheck, infra).toBeDefined();
    }
  });

  it('runs `signal-cli migrate` once, and every service waits for it to succeed', () => {
    const migrate = services.migrate ?? {};
    expect(migrate.command).toEqual(['signal-cli', 'migrate']);
    expect(migrate.restart).toBe('no');
    expect((migrate.build as Record<string, unknown>).target).toBe('signal');
    for (const svc of SIGNAL_SERVICES) {
      const dependsOn = services[svc]?.depends_on as Record<string, { condition: string }>;
      expect(dependsOn.migrate?.condition, svc).toBe('service_completed_successfully');
      for (const infra of ['postgres', 'redis', 'kafka']) {
        expect(dependsOn[infra]?.condition, `${svc} → ${infra}`).toBe('service_healthy');
      }
    }
  });

  it.each(SIGNAL_SERVICES)('%s: built from its target, hardened, health-checked', (svc) => {
    const service = services[svc] ?? {};
    expect((service.build as Record<string, unknown>).target).toBe(svc);
    expect((service.build as Record<string, unknown>).dockerfile).toBe('deploy/docker/Dockerfile');
    expect(service.read_only).toBe(true);
    expect(service.cap_drop).toEqual(['ALL']);
    expect(String(service.user)).not.toMatch(/^(root|0)(:|$)/);
    expect(service.tmpfs).toEqual([expect.stringMatching(/^\/tmp/)]);
    expect(JSON.stringify(service.healthcheck)).toContain('/health/');
  });

  it.each(SIGNAL_SERVICES)('%s: sets every variable it needs, only known names', (svc) => {
    const env = serviceEnvironment(services[svc] ?? {}, filled);
    for (const name of requiredEnv(svc)) expect(Object.keys(env), `${svc} ${name}`).toContain(name);
    for (const name of Object.keys(env)) expect(KNOWN_NAMES.has(name), `${svc}: unknown ${name}`).toBe(true);
  });

  it.each(SIGNAL_SERVICES)('%s: its environment passes the real configuration loader', (svc) => {
    const config = load(serviceEnvironment(services[svc] ?? {}, filled));
    expect(config.encryption.requireEncryption).toBe(true);
    expect(config.encryption.key?.reveal()).toBe(filled.ENCRYPTION_KEY);
    expect(config.encryption.previousKey).toBeNull();
    expect(config.bus.kind).toBe('kafka');
    expect(config.bus.kafka.brokers).toEqual(['kafka:9092']);
    // One broker: a topic with more replicas than brokers cannot be created.
    expect(config.bus.kafka.replicationFactor).toBe(1);
    expect(config.database.url?.reveal()).toMatch(/^postgres:\/\/signal:[0-9a-f]+@postgres:5432\/signal/);
    expect(config.redis.url?.reveal()).toMatch(/^redis:\/\/:[0-9a-f]+@redis:6379\/0$/);
  });

  it('the .env.example key is a placeholder that fails validation until replaced, with the generate-key hint', () => {
    expect(example.ENCRYPTION_KEY).toMatch(/REPLACE_ME/);
    expect(readFileSync(join(composeDir, '.env.example'), 'utf8')).toContain('pnpm signal-cli generate-key');
    for (const svc of SIGNAL_SERVICES) {
      const env = serviceEnvironment(services[svc] ?? {}, {
        ...filled,
        ENCRYPTION_KEY: example.ENCRYPTION_KEY ?? '',
      });
      expect(configProblems(env).join('\n'), svc).toMatch(
        /^ENCRYPTION_KEY must be exactly 64 hexadecimal characters/m,
      );
    }
    const management = serviceEnvironment(services['management-api'] ?? {}, {
      ...filled,
      JWT_SECRET: example.JWT_SECRET ?? '',
    });
    expect(configProblems(management).join('\n')).toMatch(/JWT_SECRET must be/);
  });

  it('stops `docker compose up` with a hint when a secret is missing from .env', () => {
    const { ENCRYPTION_KEY: _dropped, ...withoutKey } = filled;
    expect(() => serviceEnvironment(services['management-api'] ?? {}, withoutKey)).toThrow(
      InterpolationError,
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a compose interpolation, not a JS template
    expect(() => interpolate('${ENCRYPTION_KEY:?set ENCRYPTION_KEY}', { ENCRYPTION_KEY: '' })).toThrow(
      'set ENCRYPTION_KEY',
    );
  });

  it('dual-key mode: ENCRYPTION_KEY_PREVIOUS from .env reaches every service; empty means single-key', () => {
    const previous = hex(32);
    for (const svc of SIGNAL_SERVICES) {
      const config = load(
        serviceEnvironment(services[svc] ?? {}, { ...filled, ENCRYPTION_KEY_PREVIOUS: previous }),
      );
      expect(config.encryption.previousKey?.reveal(), svc).toBe(previous);
    }
  });

  it('TRUSTED_PROXY_HOPS from .env reaches the gateway only: the other public ports are published directly', () => {
    const hops = (svc: string) =>
      load(serviceEnvironment(services[svc] ?? {}, { ...filled, TRUSTED_PROXY_HOPS: '2' })).gateway
        .trustedProxyHops;
    expect(hops('ingestion-gateway')).toBe(2);
    // A client reaching 8081/8082 directly could otherwise write its own X-Forwarded-For (audit IPs, throttle).
    expect(hops('identity-hub')).toBe(0);
    expect(hops('management-api')).toBe(0);
  });

  it('METRICS_TOKEN from .env reaches every service; empty leaves /metrics open', () => {
    const token = hex(32);
    for (const svc of SIGNAL_SERVICES) {
      const withToken = load(serviceEnvironment(services[svc] ?? {}, { ...filled, METRICS_TOKEN: token }));
      expect(withToken.metricsToken?.reveal(), svc).toBe(token);
      expect(load(serviceEnvironment(services[svc] ?? {}, filled)).metricsToken, svc).toBeNull();
    }
  });

  it('the TLS variant verifies Redis and PostgreSQL against the CA and serves HTTPS', () => {
    const tls = readComposeFile(join(composeDir, 'docker-compose.tls.yml'));
    const merged = mergeCompose(compose, tls) as { services: Record<string, Record<string, unknown>> };
    const redisCommand = (merged.services.redis?.command as string[] | undefined)?.join(' ');
    expect(redisCommand).toMatch(/--port 0 .*--tls-port 6380/);
    for (const svc of SIGNAL_SERVICES) {
      const config = load(serviceEnvironment(merged.services[svc] ?? {}, filled));
      expect(config.redis.tls).toEqual({ enabled: true, caCertPath: '/certs/ca.crt' });
      expect(config.redis.url?.reveal()).toMatch(/^rediss:\/\/.*@redis:6380\/0$/);
      expect(config.database.url?.reveal()).toContain('sslmode=verify-full&sslrootcert=/certs/ca.crt');
      expect(config.tls).toEqual({
        certPath: '/certs/signal.crt',
        keyPath: '/certs/signal.key',
        minVersion: '1.2',
      });
    }
    const migrateEnv = serviceEnvironment(merged.services.migrate ?? {}, filled);
    expect(migrateEnv.DATABASE_URL).toContain('sslmode=verify-full');
  });
});

// ── Helm chart ───────────────────────────────────────────────────────────────────────────────────────

const KEY = hex(32);
const NEW_KEY = hex(32);
/** A realistic values file: what an operator passes with -f. */
const PRODUCTION_VALUES: Values = {
  encryption: { key: KEY },
  jwt: { secret: hex(32) },
  kafka: { brokers: 'kafka-0.kafka:9092,kafka-1.kafka:9092' },
  services: { 'ingestion-gateway': { env: { COOKIE_DOMAIN: '.example.com' } } },
};

/** Secrets the operator created before installing (the chart references them; it never creates them). */
const EXISTING_SECRETS: Record<string, Record<string, string>> = {
  'signal-database': { url: 'postgres://signal:pw@pg.internal:5432/signal?sslmode=verify-full' },
  'signal-redis': { url: 'rediss://:pw@redis.internal:6380/0' },
  'signal-kafka-sasl': { username: 'signal', password: 'kafka-pw' },
};

function manifestsOf(kind: string, rendered: readonly Manifest[]): Manifest[] {
  return rendered.filter((m) => m.kind === kind);
}

type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
};

function containerOf(deployment: Manifest): Record<string, unknown> & { env: EnvVar[] } {
  const spec = (deployment.doc.spec as { template: { spec: { containers: unknown[] } } }).template.spec;
  return spec.containers[0] as Record<string, unknown> & { env: EnvVar[] };
}

/** The environment a pod would see: values, and secretKeyRefs resolved against the Secrets that exist. */
function resolvePodEnv(env: readonly EnvVar[], rendered: readonly Manifest[]): Record<string, string> {
  const secrets: Record<string, Record<string, string>> = { ...EXISTING_SECRETS };
  for (const secret of manifestsOf('Secret', rendered)) {
    const data = (secret.doc.data ?? {}) as Record<string, string>;
    secrets[secret.name] = Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }
  const out: Record<string, string> = {};
  for (const entry of env) {
    if (entry.value !== undefined) {
      out[entry.name] = entry.value;
      continue;
    }
    const ref = entry.valueFrom?.secretKeyRef;
    if (!ref) throw new Error(`${entry.name}: neither value nor secretKeyRef`);
    const value = secrets[ref.name]?.[ref.key];
    if (value === undefined) {
      // Kubernetes refuses to start a pod whose non-optional secretKeyRef is missing.
      if (!ref.optional) throw new Error(`${entry.name}: Secret ${ref.name} has no key ${ref.key}`);
      continue;
    }
    out[entry.name] = value;
  }
  return out;
}

function deploymentFor(svc: string, rendered: readonly Manifest[]): Manifest {
  const found = manifestsOf('Deployment', rendered).find((d) => d.name === `signal-${svc}`);
  if (!found) throw new Error(`no Deployment for ${svc}`);
  return found;
}

function checksumOf(svc: string, rendered: readonly Manifest[]): string {
  const template = (
    deploymentFor(svc, rendered).doc.spec as {
      template: { metadata: { annotations: Record<string, string> } };
    }
  ).template;
  return template.metadata.annotations['checksum/secrets'] ?? '';
}

function renderError(values: Values, set: readonly string[] = []): string {
  try {
    renderChart(chartDir, { values, set });
  } catch (err) {
    if (err instanceof TemplateError) return err.message;
    throw err;
  }
  throw new Error('expected the chart to refuse these values');
}

describe('deploy/helm/signal', () => {
  const { manifests } = renderChart(chartDir, { values: PRODUCTION_VALUES });

  it('renders the expected objects with default options', () => {
    const kinds = manifests.map((m) => `${m.kind}/${m.name}`).sort();
    expect(kinds).toEqual(
      [
        ...SIGNAL_SERVICES.flatMap((s) => [
          `Deployment/signal-${s}`,
          `Service/signal-${s}`,
          `PodDisruptionBudget/signal-${s}`,
        ]),
        'Job/signal-migrate',
        'Secret/signal-encryption',
        'Secret/signal-jwt',
        'ServiceAccount/signal',
      ].sort(),
    );
    for (const m of manifests) expect(m.doc.apiVersion, `${m.kind}/${m.name}`).toEqual(expect.any(String));
  });

  it.each(SIGNAL_SERVICES)(
    '%s: the Deployment sets every variable the service needs, only known names',
    (svc) => {
      const env = containerOf(deploymentFor(svc, manifests)).env;
      const names = env.map((e) => e.name);
      for (const name of requiredEnv(svc)) expect(names, `${svc} ${name}`).toContain(name);
      for (const name of names) expect(KNOWN_NAMES.has(name), `${svc}: unknown ${name}`).toBe(true);
      expect(new Set(names).size, `${svc}: duplicate variables`).toBe(names.length);
      // Secrets come from Secrets, never inline values.
      for (const secretName of [
        'ENCRYPTION_KEY',
        'ENCRYPTION_KEY_PREVIOUS',
        'DATABASE_URL',
        'REDIS_URL',
        'JWT_SECRET',
      ]) {
        const entry = env.find((e) => e.name === secretName);
        if (entry) expect(entry.valueFrom?.secretKeyRef, `${svc} ${secretName}`).toBeDefined();
      }
      expect(env.find((e) => e.name === 'ENCRYPTION_KEY_PREVIOUS')?.valueFrom?.secretKeyRef?.optional).toBe(
        true,
      );
      expect(env.find((e) => e.name === 'ENCRYPTION_KEY')?.valueFrom?.secretKeyRef?.optional).toBe(false);
    },
  );

  it.each(SIGNAL_SERVICES)('%s: the pod environment passes the real configuration loader', (svc) => {
    const env = resolvePodEnv(containerOf(deploymentFor(svc, manifests)).env, manifests);
    const config = load(env);
    expect(config.encryption.key?.reveal()).toBe(KEY);
    expect(config.encryption.previousKey).toBeNull();
    expect(config.encryption.requireEncryption).toBe(true);
    expect(config.bus.kafka.brokers).toEqual(['kafka-0.kafka:9092', 'kafka-1.kafka:9092']);
    expect(config.bus.kafka.replicationFactor).toBe(3);
    expect(config.bus.kafka.partitions).toEqual({ rawEvents: 12, delivery: 8, dlq: 3 });
    expect(config.bus.kafka.sasl).toBeNull();
    expect(config.port).toBe(8080);
    if (svc === 'management-api') expect(config.management.jwtSecret).not.toBeNull();
    if (svc === 'ingestion-gateway') expect(config.gateway.cookieDomain).toBe('.example.com');
  });

  it.each(SIGNAL_SERVICES)(
    '%s: pod security, probes, resources, rolling update without unavailability',
    (svc) => {
      const deployment = deploymentFor(svc, manifests);
      const spec = deployment.doc.spec as Record<string, unknown> & {
        template: { spec: Record<string, unknown> };
        strategy: { rollingUpdate: { maxUnavailable: number } };
      };
      const pod = spec.template.spec;
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.automountServiceAccountToken).toBe(false);
      const container = containerOf(deployment);
      expect(container.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(container.readinessProbe).toMatchObject({ httpGet: { path: '/health/crypto', scheme: 'HTTP' } });
      expect(container.livenessProbe).toMatchObject({ httpGet: { path: '/health/live' } });
      expect(container.startupProbe).toMatchObject({ httpGet: { path: '/health/ready' } });
      expect(container.resources).toMatchObject({
        requests: { cpu: expect.anything(), memory: expect.anything() },
      });
      expect(container.image).toBe(`ghcr.io/signal/${svc}:0.1.0`);
      expect(container.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
      expect(spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
      expect(spec.replicas).toBe(2);
      const pdb = manifestsOf('PodDisruptionBudget', manifests).find((p) => p.name === `signal-${svc}`);
      expect(pdb?.doc.spec).toMatchObject({
        minAvailable: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': svc } },
      });
    },
  );

  it('migrations run as a pre-install/pre-upgrade hook Job with `signal-cli migrate`, no encryption key needed', () => {
    const [job] = manifestsOf('Job', manifests);
    if (!job) throw new Error('no migration Job');
    const annotations = (job.doc.metadata as { annotations: Record<string, string> }).annotations;
    expect(annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    const container = (
      job.doc.spec as {
        template: { spec: { containers: Record<string, unknown>[]; restartPolicy: string } };
      }
    ).template.spec;
    expect(container.restartPolicy).toBe('Never');
    expect(container.containers[0]?.command).toEqual(['signal-cli', 'migrate']);
    expect(container.containers[0]?.image).toBe('ghcr.io/signal/signal:0.1.0');
    const env = resolvePodEnv((container.containers[0]?.env ?? []) as EnvVar[], manifests);
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'SIGNAL_NAMESPACE', 'BUS', 'KAFKA_BROKERS']),
    );
    expect(env).not.toHaveProperty('ENCRYPTION_KEY');
    expect(load(env).database.url).not.toBeNull();
  });

  it('kafka.topicsJob: `signal-cli kafka topics create` as a hook after the migrations, with the Kafka settings', () => {
    expect(manifestsOf('Job', manifests).map((j) => j.name)).toEqual(['signal-migrate']);
    const rendered = renderChart(chartDir, {
      values: {
        ...PRODUCTION_VALUES,
        kafka: {
          brokers: 'kafka-0.kafka:9093',
          tls: { enabled: true, caSecret: { name: 'kafka-ca' } },
          sasl: { mechanism: 'scram-sha-512', existingSecret: 'signal-kafka-sasl' },
          replicationFactor: 3,
          partitions: { delivery: 4 },
          topicsJob: { enabled: true },
        },
      },
    }).manifests;
    const jobs = new Map(manifestsOf('Job', rendered).map((j) => [j.name, j]));
    const weight = (name: string): number => {
      const metadata = jobs.get(name)?.doc.metadata as { annotations?: Record<string, string> } | undefined;
      return Number(metadata?.annotations?.['helm.sh/hook-weight']);
    };
    expect(weight('signal-kafka-topics')).toBeGreaterThan(weight('signal-migrate'));
    const job = jobs.get('signal-kafka-topics');
    if (!job) throw new Error('no kafka-topics Job');
    expect((job.doc.metadata as { annotations: Record<string, string> }).annotations['helm.sh/hook']).toBe(
      'pre-install,pre-upgrade',
    );
    const pod = (job.doc.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template
      .spec;
    const container = pod.containers[0] ?? {};
    expect(container.command).toEqual(['signal-cli', 'kafka', 'topics', 'create']);
    expect(container.image).toBe('ghcr.io/signal/signal:0.1.0');
    expect(container.volumeMounts).toContainEqual({
      name: 'kafka-ca',
      mountPath: '/etc/signal/kafka-ca',
      readOnly: true,
    });
    const env = resolvePodEnv((container.env ?? []) as EnvVar[], rendered);
    expect(env).not.toHaveProperty('ENCRYPTION_KEY');
    const config = load(env);
    expect(config.database.url).not.toBeNull();
    expect(config.bus.kafka).toMatchObject({
      brokers: ['kafka-0.kafka:9093'],
      tls: { enabled: true, caCertPath: '/etc/signal/kafka-ca/ca.crt' },
      replicationFactor: 3,
      partitions: { rawEvents: 12, delivery: 4, dlq: 3 },
    });
    expect(config.bus.kafka.sasl?.mechanism).toBe('scram-sha-512');
    // Only with the Kafka bus.
    const onPostgres = renderChart(chartDir, {
      values: { ...PRODUCTION_VALUES, bus: 'postgres', kafka: { topicsJob: { enabled: true } } },
    }).manifests;
    expect(manifestsOf('Job', onPostgres).map((j) => j.name)).toEqual(['signal-migrate']);
  });

  it('the runbook’s `helm upgrade --set encryption.key=$NEW --set encryption.previousKey=$OLD` enters dual-key mode and rolls every pod', () => {
    const upgraded = renderChart(chartDir, {
      values: PRODUCTION_VALUES,
      set: [`encryption.key=${NEW_KEY}`, `encryption.previousKey=${KEY}`],
      isUpgrade: true,
    }).manifests;
    for (const svc of SIGNAL_SERVICES) {
      const config = load(resolvePodEnv(containerOf(deploymentFor(svc, upgraded)).env, upgraded));
      expect(config.encryption.key?.reveal(), svc).toBe(NEW_KEY);
      expect(config.encryption.previousKey?.reveal(), svc).toBe(KEY);
      expect(checksumOf(svc, upgraded), svc).not.toBe(checksumOf(svc, manifests));
    }
    // Step "remove the old key": --set encryption.previousKey=null (or "") → single-key mode, pods roll again.
    for (const removal of ['encryption.previousKey=null', 'encryption.previousKey=']) {
      const final = renderChart(chartDir, {
        values: PRODUCTION_VALUES,
        set: [`encryption.key=${NEW_KEY}`, removal],
        isUpgrade: true,
      }).manifests;
      const secret = manifestsOf('Secret', final).find((s) => s.name === 'signal-encryption');
      expect(Object.keys(secret?.doc.data as object), removal).toEqual(['encryption-key']);
      for (const svc of SIGNAL_SERVICES) {
        expect(
          load(resolvePodEnv(containerOf(deploymentFor(svc, final)).env, final)).encryption.previousKey,
        ).toBeNull();
        expect(checksumOf(svc, final)).not.toBe(checksumOf(svc, upgraded));
      }
    }
  });

  it('refuses bad or missing keys at render time, naming the value and the fix', () => {
    const base = { ...PRODUCTION_VALUES };
    expect(renderError({ ...base, encryption: { key: '' } })).toMatch(
      /^encryption.key is required with the local provider .*signal-cli generate-key/,
    );
    expect(renderError(base, ['encryption.key=abc123'])).toMatch(
      /^encryption.key must be exactly 64 hexadecimal/,
    );
    expect(renderError(base, ['encryption.key=123456'])).toMatch(
      /^encryption.key must be exactly 64 hexadecimal/,
    );
    expect(renderError(base, [`encryption.previousKey=${KEY}`])).toMatch(/must differ from encryption.key/);
    expect(renderError(base, [`encryption.previousKey=${'g'.repeat(64)}`])).toMatch(
      /previousKey must be exactly 64/,
    );
    expect(renderError({ ...base, jwt: { secret: '' } })).toMatch(/^jwt.secret is required/);
    expect(renderError({ ...base, kafka: { brokers: '' } })).toMatch(
      /^kafka.brokers .* is required when bus is kafka/,
    );
    expect(
      renderError({ ...base, kafka: { brokers: 'k:9092', sasl: { mechanism: 'scram-sha-256' } } }),
    ).toMatch(/^kafka.sasl.existingSecret is required when kafka.sasl.mechanism is set/);
    expect(
      renderError({
        ...base,
        kafka: { brokers: 'k:9092', sasl: { mechanism: 'plain', existingSecret: 'signal-kafka-sasl' } },
      }),
    ).toMatch(/^kafka.sasl.mechanism plain sends the password in clear: set kafka.tls.enabled=true/);
  });

  it('existing Secrets instead of chart-managed ones', () => {
    const rendered = renderChart(chartDir, {
      values: {
        ...PRODUCTION_VALUES,
        encryption: { key: '', existingSecret: 'vault-signal-keys' },
        jwt: { existingSecret: 'vault-signal-jwt' },
      },
    }).manifests;
    expect(manifestsOf('Secret', rendered)).toEqual([]);
    const env = containerOf(deploymentFor('management-api', rendered)).env;
    expect(env.find((e) => e.name === 'ENCRYPTION_KEY')?.valueFrom?.secretKeyRef?.name).toBe(
      'vault-signal-keys',
    );
    expect(env.find((e) => e.name === 'JWT_SECRET')?.valueFrom?.secretKeyRef?.name).toBe('vault-signal-jwt');
  });

  it('TLS: whole-Secret mounts (reloadable), HTTPS probes, Redis and database CAs, cert-manager Certificate', () => {
    const rendered = renderChart(chartDir, {
      values: {
        ...PRODUCTION_VALUES,
        tls: {
          enabled: true,
          minVersion: '1.3',
          certManager: { enabled: true, issuerRef: { name: 'letsencrypt' }, dnsNames: ['data.example.com'] },
        },
        redis: { tls: { enabled: true, caSecret: { name: 'redis-ca' } } },
        database: { caSecret: { name: 'pg-ca' } },
        kafka: {
          brokers: 'kafka-0.kafka:9093',
          tls: { enabled: true, caSecret: { name: 'kafka-ca' } },
          sasl: { mechanism: 'scram-sha-512', existingSecret: 'signal-kafka-sasl' },
        },
      },
    }).manifests;
    expect(JSON.stringify(rendered)).not.toContain('subPath');
    for (const svc of SIGNAL_SERVICES) {
      const deployment = deploymentFor(svc, rendered);
      const container = containerOf(deployment);
      const config = load({ ...resolvePodEnv(container.env, rendered) });
      expect(config.tls).toEqual({
        certPath: '/etc/signal/tls/tls.crt',
        keyPath: '/etc/signal/tls/tls.key',
        minVersion: '1.3',
      });
      expect(config.redis.tls).toEqual({ enabled: true, caCertPath: '/etc/signal/redis-ca/ca.crt' });
      expect(config.bus.kafka.tls).toEqual({ enabled: true, caCertPath: '/etc/signal/kafka-ca/ca.crt' });
      expect(config.bus.kafka.sasl?.mechanism).toBe('scram-sha-512');
      expect(config.bus.kafka.sasl?.username).toBe('signal');
      expect(config.bus.kafka.sasl?.password.reveal()).toBe('kafka-pw');
      expect(container.env.find((e) => e.name === 'KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
        name: 'signal-kafka-sasl',
        key: 'password',
      });
      expect(container.readinessProbe).toMatchObject({ httpGet: { scheme: 'HTTPS', port: 'https' } });
      expect(container.volumeMounts).toEqual(
        expect.arrayContaining([
          { name: 'tls', mountPath: '/etc/signal/tls', readOnly: true },
          { name: 'redis-ca', mountPath: '/etc/signal/redis-ca', readOnly: true },
          { name: 'database-ca', mountPath: '/etc/signal/database-ca', readOnly: true },
          { name: 'kafka-ca', mountPath: '/etc/signal/kafka-ca', readOnly: true },
        ]),
      );
      const volumes = (deployment.doc.spec as { template: { spec: { volumes: Record<string, unknown>[] } } })
        .template.spec.volumes;
      expect(volumes).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            name: 'tls',
            secret: expect.objectContaining({ secretName: 'signal-tls' }),
          }),
          { name: 'kafka-ca', secret: { secretName: 'kafka-ca' } },
        ]),
      );
    }
    const [certificate] = manifestsOf('Certificate', rendered);
    if (!certificate) throw new Error('no Certificate');
    expect(certificate.doc.spec).toMatchObject({
      secretName: 'signal-tls',
      issuerRef: { name: 'letsencrypt' },
    });
    expect((certificate.doc.spec as { dnsNames: string[] }).dnsNames).toEqual(
      expect.arrayContaining([
        'data.example.com',
        'signal-management-api',
        'signal-management-api.signal.svc',
      ]),
    );
  });

  it('every public service trusts the ingress hop for the client address (rate limits, login throttle, audit)', () => {
    for (const svc of ['ingestion-gateway', 'identity-hub', 'management-api']) {
      const env = resolvePodEnv(containerOf(deploymentFor(svc, manifests)).env, manifests);
      expect(load(env).gateway.trustedProxyHops, svc).toBe(1);
      expect(load(env).gateway.trustedProxyCidrs, svc).toEqual([]);
    }
    // The ingress pods' network, set per service, is what each one then believes X-Forwarded-For from.
    const withIngressNetwork = renderChart(chartDir, {
      values: PRODUCTION_VALUES,
      set: ['ingestion-gateway', 'identity-hub', 'management-api'].map(
        (svc) => `services.${svc}.env.TRUSTED_PROXY_CIDRS=10.0.0.0/8`,
      ),
    }).manifests;
    for (const svc of ['ingestion-gateway', 'identity-hub', 'management-api']) {
      const env = resolvePodEnv(containerOf(deploymentFor(svc, withIngressNetwork)).env, withIngressNetwork);
      expect(load(env).gateway.trustedProxyCidrs, svc).toEqual(['10.0.0.0/8']);
    }
  });

  it('metrics.tokenSecret: every service requires the token on /metrics and the ServiceMonitor sends it', () => {
    const token = hex(32);
    const tokenSecret = { name: 'signal-metrics', key: 'token' };
    const rendered = renderChart(chartDir, {
      values: { ...PRODUCTION_VALUES, metrics: { tokenSecret }, serviceMonitor: { enabled: true } },
    }).manifests;
    for (const svc of SIGNAL_SERVICES) {
      const env = containerOf(deploymentFor(svc, rendered)).env;
      expect(env.find((e) => e.name === 'METRICS_TOKEN')?.valueFrom?.secretKeyRef, svc).toEqual(tokenSecret);
      const podEnv = resolvePodEnv(
        env.filter((e) => e.name !== 'METRICS_TOKEN'),
        rendered,
      );
      expect(load({ ...podEnv, METRICS_TOKEN: token }).metricsToken?.reveal(), svc).toBe(token);
    }
    const [monitor] = manifestsOf('ServiceMonitor', rendered);
    expect(monitor?.doc.spec).toMatchObject({
      endpoints: [{ path: '/metrics', authorization: { type: 'Bearer', credentials: tokenSecret } }],
    });

    // Default: no token, and the ServiceMonitor sends none.
    for (const svc of SIGNAL_SERVICES) {
      const env = resolvePodEnv(containerOf(deploymentFor(svc, manifests)).env, manifests);
      expect(env.METRICS_TOKEN, svc).toBeUndefined();
      expect(load(env).metricsToken, svc).toBeNull();
    }
    const defaultMonitor = renderChart(chartDir, {
      values: { ...PRODUCTION_VALUES, serviceMonitor: { enabled: true } },
    }).manifests.find((m) => m.kind === 'ServiceMonitor');
    expect(JSON.stringify(defaultMonitor?.doc)).not.toContain('authorization');
  });

  it('NetworkPolicy and ServiceMonitor only when enabled', () => {
    expect(manifestsOf('NetworkPolicy', manifests)).toEqual([]);
    expect(manifestsOf('ServiceMonitor', manifests)).toEqual([]);
    const rendered = renderChart(chartDir, {
      values: {
        ...PRODUCTION_VALUES,
        networkPolicy: {
          enabled: true,
          restrictEgress: true,
          metricsFrom: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
          ],
          egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }],
        },
        serviceMonitor: { enabled: true },
      },
    }).manifests;
    const policies = manifestsOf('NetworkPolicy', rendered);
    expect(policies.map((p) => p.name).sort()).toEqual(SIGNAL_SERVICES.map((s) => `signal-${s}`).sort());
    const processor = policies.find((p) => p.name === 'signal-event-processor')?.doc.spec as {
      ingress: { from?: unknown[] }[];
      policyTypes: string[];
    };
    // Internal service: only the metrics scrapers may connect.
    expect(processor.ingress).toHaveLength(1);
    expect(processor.ingress[0]?.from).toHaveLength(1);
    expect(processor.policyTypes).toEqual(['Ingress', 'Egress']);
    const gateway = policies.find((p) => p.name === 'signal-ingestion-gateway')?.doc.spec as {
      ingress: unknown[];
    };
    expect(gateway.ingress).toHaveLength(2);
    const [monitor] = manifestsOf('ServiceMonitor', rendered);
    expect(monitor?.doc.spec).toMatchObject({ endpoints: [{ path: '/metrics', port: 'http' }] });
  });

  it('a single-replica service gets no PodDisruptionBudget (it would block node drains)', () => {
    const rendered = renderChart(chartDir, {
      values: PRODUCTION_VALUES,
      set: ['services.event-processor.replicas=1'],
    }).manifests;
    expect(manifestsOf('PodDisruptionBudget', rendered).map((p) => p.name)).not.toContain(
      'signal-event-processor',
    );
    expect((deploymentFor('event-processor', rendered).doc.spec as { replicas: number }).replicas).toBe(1);
  });
});

// ── Grafana dashboard ────────────────────────────────────────────────────────────────────────────────

/** ARCHITECTURE §7: the metric names dashboards and operators rely on. */
const CONTRACT_METRICS = [
  'signal_events_received_total',
  'signal_events_rejected_total',
  'signal_deliveries_total',
  'signal_delivery_duration_seconds',
  'signal_dlq_depth',
  'signal_consent_decisions_total',
  'signal_crypto_operations_total',
  'signal_kms_requests_total',
];

/** Every `signal_*` name mentioned in a package or service README or in docs/: the documented metrics. */
function documentedMetrics(): Set<string> {
  const files = [
    ...['packages', 'services'].flatMap((dir) =>
      readdirSync(join(root, dir))
        .map((name) => join(root, dir, name, 'README.md'))
        .filter((f) => existsSync(f)),
    ),
    ...walk(join(root, 'docs')).filter((f) => f.endsWith('.md')),
  ];
  const names = new Set<string>();
  for (const file of files) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\bsignal_[a-z0-9_]+/g)) names.add(match[0]);
  }
  return names;
}

describe('docs/grafana/signal-dashboard.json', () => {
  const dashboard = JSON.parse(
    readFileSync(join(root, 'docs', 'grafana', 'signal-dashboard.json'), 'utf8'),
  ) as {
    panels: { type: string; title: string; datasource?: unknown; targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  );

  it('queries every contract metric', () => {
    const all = exprs.map((e) => e.expr).join('\n');
    for (const metric of CONTRACT_METRICS) expect(all, metric).toContain(metric);
  });

  it('queries only contract or documented metric names', () => {
    const allowed = new Set([...CONTRACT_METRICS, ...documentedMetrics()]);
    for (const { panel, expr } of exprs) {
      for (const match of expr.matchAll(/\bsignal_[a-z0-9_]+/g)) {
        const metric = match[0].replace(/_(bucket|sum|count)$/, '');
        expect(allowed.has(metric) || allowed.has(match[0]), `${panel}: ${match[0]}`).toBe(true);
      }
    }
  });

  it('every panel has a query and the dashboard’s data source variable', () => {
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, not a JS template
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });
});
