/** Parsed command-line options of a verb: `--name value` pairs and bare `--flag`s. */
export interface ParsedOptions {
  readonly values: ReadonlyMap<string, string>;
  readonly flags: ReadonlySet<string>;
  readonly positionals: readonly string[];
}

/** A usage mistake: the verb prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'usage';
}

/**
 * Parses `args` against the options a verb knows: `valued` take the next argument (or `--name=value`),
 * `flags` take none. Anything else starting with `--` is refused, so a typo never silently widens what a
 * verb does (a replay without its filter, say).
 */
export function parseOptions(
  args: readonly string[],
  spec: { readonly valued?: readonly string[]; readonly flags?: readonly string[] },
): ParsedOptions {
  const valued = new Set(spec.valued ?? []);
  const known = new Set(spec.flags ?? []);
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (valued.has(name)) {
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) {
        throw new UsageError(`--${name} needs a value`);
      }
      if (values.has(name)) throw new UsageError(`--${name} is given twice`);
      values.set(name, value);
    } else if (known.has(name) && eq === -1) {
      flags.add(name);
    } else {
      throw new UsageError(`unknown option ${arg.slice(0, eq === -1 ? undefined : eq)}`);
    }
  }
  return { values, flags, positionals };
}

/** An ISO 8601 date-time with a time zone (`2026-04-06T14:30:00Z`), as the API takes it. */
export function parseInstant(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
    Number.isNaN(date.getTime())
  ) {
    throw new UsageError(
      `--${name} must be an ISO 8601 date-time with a time zone, e.g. 2026-04-06T14:30:00Z`,
    );
  }
  return date;
}

/** A whole number within [min, max]. */
export function parseWholeNumber(
  name: string,
  value: string | undefined,
  range: { readonly min: number; readonly max: number },
): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= range.min && n <= range.max)) {
    throw new UsageError(`--${name} must be a whole number from ${range.min} to ${range.max}`);
  }
  return n;
}
