import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseTemplates, TemplateError } from './go-template';

/**
 * `helm template` for deploy/helm/signal without helm: values.yaml coalesced with the test's values and
 * `--set` flags (Helm's rules: maps merge, null deletes a default, `--set` infers bool/int/null), every
 * non-partial template rendered with the Go-template subset of ./go-template, and each rendered file split
 * into YAML documents. See go-template.ts for what the renderer does not do.
 */

export type Values = Record<string, unknown>;

export interface Manifest {
  readonly file: string;
  readonly kind: string;
  readonly name: string;
  readonly doc: Record<string, unknown>;
}

export interface RenderOptions {
  readonly releaseName?: string;
  readonly namespace?: string;
  /** Like `-f values.yaml`: coalesced over the chart's values.yaml. */
  readonly values?: Values;
  /** Like `--set a.b=c` (applied after `values`). */
  readonly set?: readonly string[];
  readonly isUpgrade?: boolean;
}

export interface RenderedChart {
  readonly manifests: readonly Manifest[];
  readonly notes: string;
  readonly values: Values;
}

function isDict(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's coalescing of user values over chart defaults: maps merge, null deletes, anything else replaces. */
export function coalesce(defaults: Values, overrides: Values): Values {
  const out: Values = { ...defaults };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) {
      delete out[key];
    } else if (isDict(value) && isDict(out[key])) {
      out[key] = coalesce(out[key] as Values, value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** strvals' type inference for `--set`: true/false, null, and base-10 integers that fit int64. */
function typedSetValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (raw === 'null') return null;
  if (/^-?(0|[1-9]\d*)$/.test(raw)) {
    const n = BigInt(raw);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return n;
  }
  return raw;
}

/** Parses `--set` flags into a values tree (dotted keys, comma-separated pairs, `\,` and `\.` escapes). */
export function parseSet(flags: readonly string[]): Values {
  let out: Values = {};
  for (const flag of flags) {
    for (const pair of flag.split(/(?<!\\),/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`--set ${pair}: expected key=value`);
      const path = pair
        .slice(0, eq)
        .split(/(?<!\\)\./)
        .map((p) => p.replace(/\\\./g, '.'));
      const value = typedSetValue(pair.slice(eq + 1).replace(/\\,/g, ','));
      const tree: Values = {};
      let node = tree;
      path.forEach((key, i) => {
        if (i === path.length - 1) {
          node[key] = value;
        } else {
          const next: Values = {};
          node[key] = next;
          node = next;
        }
      });
      out = mergeSet(out, tree);
    }
  }
  return out;
}

/** Later --set flags win; unlike coalesce, a null is kept (it deletes the chart default afterwards). */
function mergeSet(base: Values, next: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(next)) {
    out[key] = isDict(value) && isDict(out[key]) ? mergeSet(out[key] as Values, value) : value;
  }
  return out;
}

export function renderChart(chartDir: string, options: RenderOptions = {}): RenderedChart {
  const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Values;
  const defaults = (parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) ?? {}) as Values;
  let values = coalesce(defaults, options.values ?? {});
  if (options.set) values = coalesce(values, parseSet(options.set));

  const templatesDir = join(chartDir, 'templates');
  const files = new Map<string, string>();
  for (const file of readdirSync(templatesDir).sort()) {
    files.set(`templates/${file}`, readFileSync(join(templatesDir, file), 'utf8'));
  }
  const templates = parseTemplates(files);
  const releaseName = options.releaseName ?? 'signal';
  const namespace = options.namespace ?? 'signal';
  const data = {
    Values: values,
    Release: {
      Name: releaseName,
      Namespace: namespace,
      Service: 'Helm',
      IsInstall: !options.isUpgrade,
      IsUpgrade: options.isUpgrade ?? false,
      Revision: 1,
    },
    Chart: {
      Name: chart.name,
      Version: chart.version,
      AppVersion: chart.appVersion,
      Description: chart.description,
    },
    Capabilities: { KubeVersion: { Version: 'v1.31.0' } },
  };

  const manifests: Manifest[] = [];
  let notes = '';
  for (const file of files.keys()) {
    const base = file.slice('templates/'.length);
    if (base.startsWith('_')) continue;
    const rendered = templates.render(file, { ...data, Template: { Name: file, BasePath: 'templates' } });
    if (base === 'NOTES.txt') {
      notes = rendered;
      continue;
    }
    for (const document of parseAllDocuments(rendered)) {
      if (document.errors.length > 0) {
        throw new TemplateError(`${file} renders invalid YAML: ${document.errors[0]?.message}\n${rendered}`);
      }
      const doc = document.toJS() as unknown;
      if (doc === null || doc === undefined) continue;
      if (!isDict(doc)) throw new TemplateError(`${file} renders a document that is not a mapping`);
      const metadata = isDict(doc.metadata) ? doc.metadata : {};
      manifests.push({
        file,
        kind: String(doc.kind),
        name: String(metadata.name),
        doc,
      });
    }
  }
  return { manifests, notes, values };
}
