import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Creates `path` holding `content` (mode 0600), all or nothing, and on disk before it returns: written to a
 * temporary file in the same directory and synced, then linked into place (which fails if `path` exists:
 * never overwrites), then the directory synced so the new name survives a power loss too.
 *
 * For secrets generated into the data directory (the development encryption key, JWT secret, demo
 * credentials): data encrypted or signed with them may be on disk a moment later, and a key file that is
 * empty or missing after a crash would make that data unreadable. Returns false when `path` already exists.
 */
export function createSecretFile(path: string, content: string): boolean {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } finally {
    rmSync(temporary, { force: true });
  }
  syncDirectory(dir);
  return true;
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
