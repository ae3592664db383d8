import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor holding pnpm-workspace.yaml. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('testkit: could not find the repository root (pnpm-workspace.yaml)');
    dir = parent;
  }
}

/**
 * Absolute path of a file under `../shared/vectors/` (relative to the repository root), or of
 * `$SIGNAL_VECTORS_DIR` when set. Public vectors are read in place, never copied into the repo; a missing
 * file fails loudly so a test can never pass by reading nothing.
 */
export function vectorPath(relative: string): string {
  const base = process.env.SIGNAL_VECTORS_DIR ?? resolve(repoRoot(), '..', 'shared', 'vectors');
  const file = join(base, relative);
  if (!existsSync(file)) {
    throw new Error(
      `test vectors missing: ${file} (expected ../shared/vectors beside the repository, or set SIGNAL_VECTORS_DIR)`,
    );
  }
  return file;
}

export function readVectorText(relative: string): string {
  return readFileSync(vectorPath(relative), 'utf8');
}

export function readVectorJson<T = unknown>(relative: string): T {
  return JSON.parse(readVectorText(relative)) as T;
}
