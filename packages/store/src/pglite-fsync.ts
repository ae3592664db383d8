import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { StoreError } from './errors';

/**
 * Real fsync for PGlite on disk, so that a COMMIT that returned survives a power loss or a kernel crash, not
 * only a killed process.
 *
 * Out of the box PGlite runs PostgreSQL with `-F` (fsync off), and even with fsync on nothing would reach the
 * disk: Emscripten's `fdatasync` is a no-op and its NODEFS (the host-directory file system PGlite mounts the
 * data directory with) has no `fsync`. A COMMIT then means "handed to the OS page cache", and after a crash
 * of the machine PostgreSQL can find a checkpoint whose pages never reached the disk (corruption, not only
 * loss). So:
 * - PostgreSQL starts with fsync on and `wal_sync_method=fsync` (the one method that goes through the file
 *   system's `fsync`, which we can supply; `fdatasync` is the no-op);
 * - NODEFS's `fsync` is supplied: `fs.fsyncSync` on the host file descriptor. PostgreSQL then orders its
 *   own syncs as on any server: the WAL before a COMMIT returns, data files and `pg_control` at checkpoints,
 *   new WAL segments and their directory;
 * - on open, every file and directory of the data directory is synced once: what earlier runs wrote with
 *   fsync off (and what PostgreSQL wrote while starting, before the hook existed) is on disk before the
 *   first new COMMIT is acknowledged.
 * Cost: one fsync per commit (the bus's group commit shares it between all messages of a flush); ~0.2 ms on
 * the virtual disks we measured.
 *
 * A failing fsync is reported to PostgreSQL as EIO, which PANICs (the documented safe reaction: a write
 * that may be lost must never be acknowledged), so the statement fails and the database stops answering
 * until it is reopened and has recovered from its WAL.
 */

/** PGlite's start parameters without `-F`, with the WAL synced through `fsync`. */
export const DURABLE_START_PARAMS: readonly string[] = Object.freeze([
  ...PGlite.defaultStartParams.filter((p) => p !== '-F'),
  '-c',
  'wal_sync_method=fsync',
]);

/** Syncs one open host file; the default is `fs.fsyncSync`. Tests pass a recording one. */
export type FileSync = (fd: number, path: string) => void;

interface NodeFsStream {
  readonly nfd?: unknown;
  readonly path?: unknown;
}
interface StreamOps {
  fsync?: (stream: NodeFsStream) => number;
}
interface EmscriptenFs {
  readonly ErrnoError: new (errno: number) => Error;
}

/** EIO in Emscripten's errno numbering. */
const EMSCRIPTEN_EIO = 29;

/**
 * Supplies NODEFS's `fsync` on `db` (started with DURABLE_START_PARAMS). Refuses a PGlite build without
 * NODEFS rather than run silently without durability.
 */
export function installFsync(db: PGlite, sync: FileSync = (fd) => fsyncSync(fd)): void {
  const mod = db.Module as unknown as { NODEFS?: { stream_ops?: StreamOps }; FS?: EmscriptenFs };
  const ops = mod.NODEFS?.stream_ops;
  const fs = mod.FS;
  if (ops === undefined || fs === undefined) {
    throw new StoreError(
      'unavailable',
      'this PGlite build exposes no NODEFS: cannot make the embedded database durable on disk',
    );
  }
  ops.fsync = (stream) => {
    if (typeof stream.nfd !== 'number') return 0;
    try {
      sync(stream.nfd, typeof stream.path === 'string' ? stream.path : '');
    } catch {
      throw new fs.ErrnoError(EMSCRIPTEN_EIO);
    }
    return 0;
  };
}

/** Syncs every file and directory under `dir` (the data directory), children before their directory. */
export function syncTree(dir: string, sync: FileSync = (fd) => fsyncSync(fd)): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) syncTree(path, sync);
    else if (entry.isFile()) syncPath(path, sync);
  }
  syncPath(dir, sync);
}

function syncPath(path: string, sync: FileSync): void {
  const fd = openSync(path, 'r');
  try {
    sync(fd, path);
  } finally {
    closeSync(fd);
  }
}
