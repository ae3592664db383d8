import { closeSync, existsSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';
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
 * - NODEFS's `fsync` is supplied (`DurableNodeFS`, before PostgreSQL starts): `fs.fsyncSync` on the host
 *   file descriptor. PostgreSQL then orders its own syncs as on any server: the WAL before a COMMIT returns,
 *   data files and `pg_control` at checkpoints, new WAL segments and their directory;
 * - before start, the data directory written by earlier runs with fsync off is synced once
 *   (`syncDataDir`), so crash recovery starts from what is on disk; a new data directory (initdb's files,
 *   copied in without syncs) is synced right after start, before the first COMMIT is acknowledged.
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

const defaultSync: FileSync = (fd) => fsyncSync(fd);

interface NodeFsStream {
  readonly nfd?: unknown;
  readonly path?: unknown;
  readonly node?: unknown;
}
interface EmscriptenModule {
  readonly NODEFS?: {
    stream_ops?: { fsync?: (stream: NodeFsStream) => number };
    realPath?: (node: unknown) => string;
  };
  readonly FS?: { readonly ErrnoError: new (errno: number) => Error };
}

/** EIO in Emscripten's errno numbering. */
const EMSCRIPTEN_EIO = 29;

/**
 * PGlite's NodeFS with NODEFS's `fsync` supplied before PostgreSQL starts (Emscripten `preRun`), so crash
 * recovery, its end-of-recovery checkpoint and the `pg_control` update at start-up sync for real too.
 */
export class DurableNodeFS extends NodeFS {
  readonly #sync: FileSync;
  #installed = false;

  constructor(dataDir: string, sync: FileSync = defaultSync) {
    super(dataDir);
    this.#sync = sync;
  }

  /** Whether the hook was installed (checked after start: a PGlite without NODEFS must not run). */
  get installed(): boolean {
    return this.#installed;
  }

  override async init(...args: Parameters<NodeFS['init']>): ReturnType<NodeFS['init']> {
    const { emscriptenOpts } = await super.init(...args);
    const install = (mod: unknown): void => {
      installFsync(mod as EmscriptenModule, this.#sync);
      this.#installed = true;
    };
    return {
      emscriptenOpts: { ...emscriptenOpts, preRun: [...(emscriptenOpts.preRun ?? []), install] },
    };
  }
}

function installFsync(mod: EmscriptenModule, sync: FileSync): void {
  const nodefs = mod.NODEFS;
  const ops = nodefs?.stream_ops;
  const fs = mod.FS;
  if (nodefs === undefined || ops === undefined || fs === undefined) {
    throw new StoreError(
      'unavailable',
      'this PGlite build exposes no NODEFS: cannot make the embedded database durable on disk',
    );
  }
  ops.fsync = (stream) => {
    try {
      if (typeof stream.nfd === 'number') {
        sync(stream.nfd, typeof stream.path === 'string' ? stream.path : '');
      } else {
        // A stream without a host descriptor (older Emscripten opened only files): sync its host path,
        // never report a sync that did not happen.
        if (nodefs.realPath === undefined || stream.node === undefined) throw new Error('no host path');
        syncPath(nodefs.realPath(stream.node), sync);
      }
    } catch {
      throw new fs.ErrnoError(EMSCRIPTEN_EIO);
    }
    return 0;
  };
}

/**
 * Syncs every file and directory under `dir` (the data directory), children before their directory and
 * `global/pg_control` last (it names the checkpoint recovery starts from, so it must not reach the disk
 * before the pages and WAL it vouches for), then `dir`'s parent (so the directory itself is not lost).
 */
export function syncDataDir(dir: string, sync: FileSync = defaultSync): void {
  const control = join(dir, 'global', 'pg_control');
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && path !== control) syncPath(path, sync);
    }
    syncPath(at, sync);
  };
  walk(dir);
  if (existsSync(control)) syncPath(control, sync);
  syncPath(dirname(dir), sync);
}

function syncPath(path: string, sync: FileSync): void {
  const fd = openSync(path, 'r');
  try {
    sync(fd, path);
  } finally {
    closeSync(fd);
  }
}
