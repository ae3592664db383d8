/**
 * Production bundles: `tsx deploy/build/bundle.ts <service…> [--out <dir>]`.
 *
 * For each service, esbuild bundles `services/<name>/src/main.ts` (and, for `signal`, the CLI) into one ESM
 * file per entry under `services/<name>/dist/` (or `<dir>/<name>/` with --out): platform node, target node20,
 * our TypeScript and the pure-JavaScript dependencies inlined. A few packages cannot be inlined (below); they
 * stay `import`s and are copied, with their dependency closure, into `dist/node_modules/`, so that
 * `node services/<name>/dist/main.js` runs as is — in the repository and in the image, which copies
 * `dist/` and nothing else (docs/adr/0003-production-bundles.md).
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';

export const SERVICES = [
  'ingestion-gateway',
  'event-processor',
  'delivery-worker',
  'identity-hub',
  'management-api',
  'signal',
] as const;
export type ServiceName = (typeof SERVICES)[number];

/**
 * Packages left out of the bundle. `required` ones must be installed (the build fails otherwise) and are
 * shipped in dist/node_modules; `optional` ones are shipped when installed and otherwise stay a lazy import
 * that only fails if the feature that needs it is used.
 */
export const EXTERNAL_PACKAGES: Readonly<Record<string, { mode: 'required' | 'optional'; why: string }>> = {
  '@electric-sql/pglite': {
    mode: 'required',
    why: 'embedded PostgreSQL: loads its WASM, data and extension files relative to its own module',
  },
  esbuild: {
    mode: 'required',
    why: 'native binary; only shipped if something still imports it (d.js is prebuilt, see prebuiltSdk)',
  },
  'pg-native': { mode: 'optional', why: 'native libpq binding, loaded by pg only when asked for' },
  '@aws-sdk/client-kms': { mode: 'optional', why: 'ENCRYPTION_PROVIDER=aws-kms, loaded lazily' },
  'google-auth-library': {
    mode: 'optional',
    why: 'ENCRYPTION_PROVIDER=gcp-kms (ADC access tokens), loaded lazily',
  },
  '@azure/keyvault-keys': { mode: 'optional', why: 'ENCRYPTION_PROVIDER=azure-keyvault, loaded lazily' },
  '@azure/identity': { mode: 'optional', why: 'azure-keyvault credentials, loaded lazily' },
};

/** Entry points per service: source file (relative to the service) → output name (without .js). */
export function entryPoints(service: ServiceName): Readonly<Record<string, string>> {
  return service === 'signal'
    ? { main: 'src/main.ts', 'signal-cli': 'src/cli/main.ts' }
    : { main: 'src/main.ts' };
}

export interface BundleOptions {
  readonly service: ServiceName;
  /** Repository root; default: two levels above this file. */
  readonly repoRoot?: string;
  /** Output directory; default `services/<service>/dist`. Emptied first. */
  readonly outDir?: string;
}

export interface BundleResult {
  readonly outDir: string;
  /** Bundled files written, relative to outDir (`main.js`, `signal-cli.js`). */
  readonly files: readonly string[];
  /** External packages copied into outDir/node_modules (the whole closure), sorted. */
  readonly shippedPackages: readonly string[];
  /** Optional externals imported by the code but not installed (their features fail when used). */
  readonly missingOptional: readonly string[];
  /** Size of the bundled JavaScript in bytes. */
  readonly bytes: number;
}

export class BundleError extends Error {
  override readonly name = 'BundleError';
  readonly code = 'bundle_failed';
}

const here = dirname(fileURLToPath(import.meta.url));

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Node's lookup: `<dir>/node_modules/<name>` from `fromDir` upwards; the real path, or null. */
function findPackageDir(name: string, fromDir: string): string | null {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

interface PackageJson {
  readonly name?: string;
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/**
 * Copies `name` (found from `fromDir`) and its runtime dependencies into `nodeModules`, flat. Two versions
 * of one package in the closure would need nesting; that fails the build loudly instead.
 */
function shipPackage(
  name: string,
  fromDir: string,
  nodeModules: string,
  shipped: Map<string, string>,
  optional: boolean,
): void {
  const source = findPackageDir(name, fromDir);
  if (source === null) {
    if (optional) return;
    throw new BundleError(`${name} is needed at run time but is not installed (looked up from ${fromDir})`);
  }
  const already = shipped.get(name);
  if (already === source) return;
  if (already !== undefined) {
    throw new BundleError(
      `two versions of ${name} are needed at run time (${already} and ${source}): align them in the lockfile`,
    );
  }
  const target = join(nodeModules, name);
  shipped.set(name, source);
  cpSync(source, target, { recursive: true, dereference: true });
  const manifest = readPackageJson(source);
  for (const dep of Object.keys(manifest.dependencies ?? {})) {
    shipPackage(dep, source, nodeModules, shipped, false);
  }
  for (const dep of Object.keys(manifest.optionalDependencies ?? {})) {
    shipPackage(dep, source, nodeModules, shipped, true);
  }
}

/**
 * The external packages one output file imports, each with an input file that imports it (the package is
 * resolved from there, as Node would have from the source).
 */
function externalImports(metafile: Metafile, root: string, outputFile: string): Map<string, string> {
  const importers = new Map<string, string>();
  const output = Object.entries(metafile.outputs).find(([path]) => resolve(root, path) === outputFile)?.[1];
  for (const input of Object.keys(output?.inputs ?? {})) {
    for (const imported of metafile.inputs[input]?.imports ?? []) {
      if (!imported.external || imported.path.startsWith('node:')) continue;
      const name = packageName(imported.path);
      if (!(name in EXTERNAL_PACKAGES)) continue;
      if (!importers.has(name)) importers.set(name, resolve(root, input));
    }
  }
  return importers;
}

/**
 * ESM output running CommonJS dependencies (pg, ioredis, kafkajs) needs `require`, `__filename` and
 * `__dirname` in module scope; esbuild does not provide them for format esm.
 */
const CJS_SHIM = [
  "import { createRequire as __signalCreateRequire } from 'node:module';",
  "import { fileURLToPath as __signalFileURLToPath } from 'node:url';",
  "import { dirname as __signalDirname } from 'node:path';",
  'const require = __signalCreateRequire(import.meta.url);',
  'const __filename = __signalFileURLToPath(import.meta.url);',
  'const __dirname = __signalDirname(__filename);',
].join('\n');

interface SdkModule {
  readonly SDK_GZIP_BUDGET_BYTES: number;
  buildSdk(): Promise<{ readonly code: string; readonly gzipBytes: number; readonly integrity: string }>;
}

/**
 * `@signal/sdk`'s `buildSdk()` compiles Datafly.js from its TypeScript sources with esbuild when a service
 * starts. A bundle has neither the sources nor (ideally) esbuild, so its module `src/build.ts` is replaced
 * by one that returns the d.js built here, at bundle time, by that same function: same code, same
 * integrity hash, no compiler in the image.
 */
function prebuiltSdk(serviceDirs: readonly string[]): Plugin {
  return {
    name: 'signal-prebuilt-sdk',
    setup(pluginBuild) {
      const sdkDir =
        serviceDirs.map((dir) => findPackageDir('@signal/sdk', dir)).find((dir) => dir !== null) ?? null;
      if (sdkDir === null) return;
      const buildModule = join(sdkDir, 'src', 'build.ts');
      const escaped = buildModule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      pluginBuild.onLoad({ filter: new RegExp(`^${escaped}$`) }, async () => {
        const sdk = (await import(pathToFileURL(join(sdkDir, 'src', 'index.ts')).href)) as SdkModule;
        const bundle = await sdk.buildSdk();
        const contents = [
          '// Generated by deploy/build/bundle.ts: Datafly.js built at bundle time by @signal/sdk buildSdk().',
          `export const SDK_GZIP_BUDGET_BYTES = ${JSON.stringify(sdk.SDK_GZIP_BUDGET_BYTES)};`,
          `const prebuilt = Object.freeze(${JSON.stringify(bundle)});`,
          'export async function buildSdk() { return prebuilt; }',
        ].join('\n');
        return { contents, loader: 'js' };
      });
    },
  };
}

export interface BundleManyOptions {
  readonly services: readonly ServiceName[];
  /** Repository root; default: two levels above this file. */
  readonly repoRoot?: string;
  /** Output directory of each service; default `services/<service>/dist`. */
  readonly outDirOf?: (service: ServiceName) => string;
}

/**
 * Bundles several services in ONE esbuild run (the modules they share are parsed once), then ships each
 * service's externals into its own output directory. Each directory is emptied first.
 */
export async function bundleServices(options: BundleManyOptions): Promise<BundleResult[]> {
  const root = resolve(options.repoRoot ?? join(here, '..', '..'));
  const targets = options.services.map((service) => {
    const serviceDir = join(root, 'services', service);
    const outDir = resolve(options.outDirOf?.(service) ?? join(serviceDir, 'dist'));
    return { service, serviceDir, outDir, entries: entryPoints(service) };
  });
  if (targets.length === 0) return [];

  // One outdir for esbuild: the deepest common ancestor; entry names are paths below it.
  const outBase = targets
    .map((t) => t.outDir)
    .reduce((common, dir) => {
      let base = common;
      while (!`${dir}/`.startsWith(`${base}/`)) base = dirname(base);
      return base;
    });
  const entryFiles: Record<string, string> = {};
  for (const target of targets) {
    for (const [out, source] of Object.entries(target.entries)) {
      const file = join(target.serviceDir, source);
      if (!existsSync(file)) {
        throw new BundleError(`services/${target.service}/${source} does not exist: nothing to bundle`);
      }
      entryFiles[relative(outBase, join(target.outDir, out))] = file;
    }
    rmSync(target.outDir, { recursive: true, force: true });
    mkdirSync(target.outDir, { recursive: true });
  }

  const externals = Object.keys(EXTERNAL_PACKAGES).flatMap((name) => [name, `${name}/*`]);
  const result = await build({
    absWorkingDir: root,
    entryPoints: entryFiles,
    outdir: outBase,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Readable stack traces in production; the map carries no source text.
    sourcemap: 'linked',
    sourcesContent: false,
    minify: false,
    keepNames: true,
    legalComments: 'linked',
    external: externals,
    banner: { js: CJS_SHIM },
    plugins: [prebuiltSdk(targets.map((t) => t.serviceDir))],
    metafile: true,
    logLevel: 'silent',
  });
  if (result.errors.length > 0) {
    throw new BundleError(result.errors.map((e) => e.text).join('\n'));
  }

  return targets.map((target) => {
    const files = Object.keys(target.entries).map((name) => `${name}.js`);
    const shipped = new Map<string, string>();
    const missingOptional = new Set<string>();
    const nodeModules = join(target.outDir, 'node_modules');
    for (const file of files) {
      for (const [name, importer] of externalImports(result.metafile, root, join(target.outDir, file))) {
        const optional = EXTERNAL_PACKAGES[name]?.mode === 'optional';
        if (optional && findPackageDir(name, dirname(importer)) === null) {
          missingOptional.add(name);
          continue;
        }
        shipPackage(name, dirname(importer), nodeModules, shipped, optional);
      }
    }
    // The bundles are ESM; this makes `.js` mean ESM wherever dist/ is copied to.
    writeFileSync(
      join(target.outDir, 'package.json'),
      `${JSON.stringify({ name: `@signal/${target.service}-dist`, private: true, type: 'module' }, null, 2)}\n`,
    );
    return {
      outDir: target.outDir,
      files,
      shippedPackages: [...shipped.keys()].sort(),
      missingOptional: [...missingOptional].sort(),
      bytes: files.reduce((sum, file) => sum + statSync(join(target.outDir, file)).size, 0),
    };
  });
}

/** Bundles one service into `outDir` (default `services/<service>/dist`). */
export async function bundleService(options: BundleOptions): Promise<BundleResult> {
  const { outDir } = options;
  const [result] = await bundleServices({
    services: [options.service],
    ...(options.repoRoot === undefined ? {} : { repoRoot: options.repoRoot }),
    ...(outDir === undefined ? {} : { outDirOf: () => outDir }),
  });
  if (result === undefined) throw new BundleError('nothing was bundled');
  return result;
}

function isService(name: string): name is ServiceName {
  return (SERVICES as readonly string[]).includes(name);
}

async function cli(argv: readonly string[]): Promise<number> {
  const services: ServiceName[] = [];
  let out: string | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--out') {
      out = argv[i + 1];
      i += 1;
    } else if (arg === '--all') {
      services.push(...SERVICES);
    } else if (isService(arg)) {
      services.push(arg);
    } else {
      process.stderr.write(
        `usage: tsx deploy/build/bundle.ts <${SERVICES.join('|')}…|--all> [--out <dir>]\nunknown argument: ${arg}\n`,
      );
      return 2;
    }
  }
  if (services.length === 0) {
    process.stderr.write(`usage: tsx deploy/build/bundle.ts <${SERVICES.join('|')}…|--all> [--out <dir>]\n`);
    return 2;
  }
  const unique = [...new Set(services)];
  const results = await bundleServices({
    services: unique,
    ...(out === undefined ? {} : { outDirOf: (service: ServiceName) => join(resolve(out), service) }),
  });
  for (const [i, result] of results.entries()) {
    const where = relative(process.cwd(), result.outDir) || '.';
    process.stdout.write(
      `${unique[i]}: ${result.files.join(', ')} (${(result.bytes / 1024 / 1024).toFixed(1)} MiB) in ${where}; ` +
        `shipped ${result.shippedPackages.join(', ') || 'no packages'}` +
        (result.missingOptional.length > 0 ? `; not installed: ${result.missingOptional.join(', ')}` : '') +
        '\n',
    );
  }
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bundle: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
