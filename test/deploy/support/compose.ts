import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** docker compose's reading of a file: YAML 1.1 merge keys (`<<: *anchor`) resolved. */
export function readComposeFile(path: string): Record<string, unknown> {
  return parseYaml(readFileSync(path, 'utf8'), { merge: true }) as Record<string, unknown>;
}

/** A `.env` file: KEY=VALUE lines; blank lines and # comments skipped; no quoting rules needed here. */
export function readDotEnv(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`${path}: not KEY=VALUE: ${trimmed}`);
    out[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return out;
}

export class InterpolationError extends Error {
  override readonly name = 'InterpolationError';
}

/**
 * Compose variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}` and `${VAR?message}` (which stop `docker compose up` with the message).
 */
export function interpolate(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^}\\]|\\.)*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = braced ?? bare ?? '';
      const value = env[name];
      const missing = colon === ':' ? value === undefined || value === '' : value === undefined;
      if (op === '-') return missing ? (arg ?? '') : (value ?? '');
      if (op === '?') {
        if (missing) throw new InterpolationError(`${name}: ${arg ?? 'required'}`);
        return value ?? '';
      }
      return value ?? '';
    },
  );
}

/** A service's `environment` (map or KEY=VALUE list) with variables interpolated from `env`. */
export function serviceEnvironment(
  service: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const raw = service.environment;
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const text = String(entry);
      const eq = text.indexOf('=');
      out[eq === -1 ? text : text.slice(0, eq)] =
        eq === -1 ? (env[text] ?? '') : interpolate(text.slice(eq + 1), env);
    }
  } else if (raw !== null && typeof raw === 'object') {
    for (const [key, value] of Object.entries(raw)) {
      out[key] = value === null || value === undefined ? '' : interpolate(String(value), env);
    }
  }
  return out;
}

/** `docker compose -f a -f b` merging, for the parts this repository uses: maps merge, lists and scalars replace. */
export function mergeCompose(base: unknown, override: unknown): unknown {
  if (
    base !== null &&
    override !== null &&
    typeof base === 'object' &&
    typeof override === 'object' &&
    !Array.isArray(base) &&
    !Array.isArray(override)
  ) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [key, value] of Object.entries(override as Record<string, unknown>)) {
      out[key] = key in out ? mergeCompose(out[key], value) : value;
    }
    return out;
  }
  return override;
}
