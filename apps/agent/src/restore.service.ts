/**
 * kinvault restore: writes a snapshot (or parts of it) under a target directory.
 * Every blob is verified (AEAD and id). Paths come from validated tree names, and every
 * directory written into is checked to be a real directory inside the target, so
 * nothing can escape it. Files already present and correct are skipped.
 *
 * A pack that cannot be read, or a blob that fails its check, fails only the files that
 * need it (listed in the summary's `failed`); everything else is restored. A full disk
 * stops the restore: partial files are removed, complete ones kept.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  rmSync,
  statfsSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { lutimes, mkdir, open } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { formatBytes, isKinvaultError, KinvaultError } from '@kinvault/protocol';
import {
  BlobType,
  blobId,
  bytesEqual,
  chunkSource,
  gearTable,
  microseconds,
  prepareChunker,
  utimeArg,
  type DirNode,
  type FileNode,
  type SymlinkNode,
  type RepositoryKeys,
} from '@kinvault/format';
import pLimit from 'p-limit';
import type { RemoteRepository } from './repository.js';
import { failFile, PackWriter, place, tempName, type FileJob } from './restore-packs.js';
import { RestoreFailures, type PackDamage, type RestoreFailure } from './restore-failures.js';
import { findHardLinks, linkInto } from './restore-links.js';

export { FAILURE_ADVICE, type PackDamage, type RestoreFailure } from './restore-failures.js';

export interface RestoreSummary {
  snapshot: string;
  files_restored: number;
  files_skipped: number;
  /** Entries of `failed`: files, and folders whose contents could not be listed. */
  files_failed: number;
  bytes_written: number;
  dirs: number;
  symlinks: number;
  /** Of files_restored, the paths made hard links to another restored path. */
  hard_links: number;
  duration_s: number;
  /** What could not be restored and why (sorted by path). */
  failed: RestoreFailure[];
}

export interface RestoreOptions {
  /** Restore only these paths of the snapshot; each must be in it. */
  includes?: readonly string[];
  /**
   * Restore entries that were one hard-linked file as hard links (§14.4). Off by default:
   * v1 trees hold no device number, so a copy on another file system with the same
   * inode and times (a file-system snapshot, a cloned image) would be linked too.
   */
  hardLinks?: boolean;
  onProgress?: (s: RestoreSummary) => void;
  /**
   * Told once per pack found missing, unreadable or damaged, after the files are
   * written; a failure of the callback does not fail the restore.
   */
  onDamage?: (r: PackDamage) => Promise<void>;
}

function normalise(include: string): string {
  return include
    .split('/')
    .filter((p) => p && p !== '.')
    .join('/');
}

export async function restore(
  repo: RemoteRepository,
  keys: RepositoryKeys,
  ref: string,
  targetDir: string,
  options: RestoreOptions = {},
): Promise<RestoreSummary> {
  const started = Date.now();
  const snap = await repo.findSnapshot(ref);
  const wanted = (options.includes ?? []).map(normalise);
  // Before anything is written: a path that is not in the snapshot is a mistake.
  await checkIncludes(repo, snap.snapshot.tree, snap.id, wanted);
  const run = new RestoreRun(repo, keys, snap.id, resolve(targetDir), wanted, options);
  try {
    await run.run(snap.snapshot.tree);
  } finally {
    await reportDamage(run.failures.packs(), options.onDamage);
  }
  run.summary.duration_s = (Date.now() - started) / 1000;
  return run.summary;
}

/** Throws NOT_FOUND naming every include that is not in the snapshot. */
async function checkIncludes(
  repo: RemoteRepository,
  root: Uint8Array,
  snapshot: string,
  wanted: readonly string[],
): Promise<void> {
  const missing: string[] = [];
  for (const w of wanted) {
    const parts = w.split('/').filter(Boolean);
    let tree = root;
    for (const [i, part] of parts.entries()) {
      // An unreadable tree on the way: the restore itself reports that folder.
      const nodes = await repo.loadTree(tree).then(
        (t) => t.nodes,
        () => null,
      );
      if (!nodes) break;
      const node = nodes.find((n) => n.name === part);
      if (!node || (node.kind !== 'dir' && i < parts.length - 1)) {
        missing.push(w);
        break;
      }
      if (node.kind !== 'dir') break;
      tree = node.subtree;
    }
  }
  if (missing.length === 0) return;
  const id = snapshot.slice(0, 12);
  throw new KinvaultError(
    'NOT_FOUND',
    `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in snapshot ${id}, so nothing was restored. "kinvault ls ${id} PATH" lists what it holds.`,
    { details: { missing } },
  );
}

async function reportDamage(
  damaged: PackDamage[],
  onDamage: RestoreOptions['onDamage'],
): Promise<void> {
  if (!onDamage) return;
  for (const d of damaged)
    await Promise.resolve()
      .then(() => onDamage(d))
      .catch(() => {});
}

/** ENOSPC or EDQUOT when `e` says the disk (or the user's quota) is full. */
const diskFull = (e: unknown): string | null => {
  const x = e as { code?: unknown; details?: { errno?: unknown } };
  const code = x?.details?.errno ?? x?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? code : null;
};

/**
 * Flushes the target's filesystem (`sync -f`, i.e. syncfs, on Linux; plain `sync`
 * elsewhere). If neither runs, the files are still written, just not yet forced out.
 */
async function syncFilesystem(target: string): Promise<void> {
  const run = (args: string[]) =>
    new Promise<boolean>((res) => execFile('sync', args, (e) => res(!e)));
  if (!(await run(['-f', target]))) await run([]);
}

/** One restore: its state, and its phases in the order `run` calls them. */
class RestoreRun {
  readonly summary: RestoreSummary;
  readonly failures = new RestoreFailures();
  private readonly chunker;
  private readonly files: FileJob[] = [];
  private readonly links: { path: string; node: SymlinkNode }[] = [];
  private readonly dirs: { path: string; node: DirNode }[] = []; // children before parents
  /** Paths where nothing was when the restore looked. */
  private readonly absent = new Set<string>();
  private readonly packs: PackWriter;
  /** The files to write (hard links to them excluded), once the walk is done. */
  private toWrite: FileJob[] = [];
  // Subdirectories are walked side by side: without the local tree cache (a new or
  // rebuilt machine) each tree is a round trip to the coordinator.
  private readonly treeLoads = pLimit(8);

  constructor(
    private readonly repo: RemoteRepository,
    private readonly keys: RepositoryKeys,
    snapshot: string,
    private readonly target: string,
    private readonly wanted: readonly string[],
    private readonly options: RestoreOptions,
  ) {
    this.chunker = prepareChunker(gearTable(keys.cdcSeed));
    const summary = {
      snapshot,
      files_restored: 0,
      files_skipped: 0,
      files_failed: 0,
      bytes_written: 0,
      dirs: 0,
      symlinks: 0,
      hard_links: 0,
      duration_s: 0,
      failed: [],
    };
    this.summary = summary;
    this.packs = new PackWriter(repo, keys, this.failures, summary, () =>
      options.onProgress?.(summary),
    );
  }

  async run(root: Uint8Array): Promise<void> {
    try {
      // Directories this restore created hold nothing it did not write: their files need
      // no check for an earlier copy (20,000 lstat calls fewer for a new folder).
      const targetIsNew = (await mkdir(this.target, { recursive: true })) !== undefined;
      await this.walk(root, '', this.target, targetIsNew);
      const { write, links } = this.options.hardLinks
        ? findHardLinks(this.files)
        : { write: this.files, links: [] };
      this.toWrite = write;
      const todo = await this.leaveCorrectFiles(write);
      await this.packs.plan(todo, this.absent);
      await this.packs.write();
      for (const { file, to } of links) this.link(file, to);
      await this.makeSymlinks();
      this.finishDirs();
    } catch (e) {
      this.packs.cleanup();
      const full = diskFull(e);
      if (full) throw this.diskFullError(full, e);
      throw e;
    } finally {
      this.failures.list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      this.summary.failed = this.failures.list;
      this.summary.files_failed = this.failures.list.length;
    }
    // Everything reaches the disk before we say it is restored: one filesystem sync
    // instead of an fsync per file.
    await syncFilesystem(this.target);
  }

  private included(rel: string): boolean {
    return (
      this.wanted.length === 0 ||
      this.wanted.some(
        (w) => w === '' || rel === w || rel.startsWith(w + '/') || w.startsWith(rel + '/'),
      )
    );
  }

  private inside(path: string): string {
    const r = relative(this.target, path);
    if (r.startsWith('..') || r.startsWith(sep) || resolve(this.target, r) !== path) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to write ${path}: it is outside the target ${this.target}.`,
      );
    }
    return path;
  }

  private realDir(path: string): void {
    const st = lstatSync(path);
    if (!st.isDirectory() || st.isSymbolicLink()) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to restore into ${path}: it is not a directory (a link or file is in the way). Move it aside or restore elsewhere.`,
      );
    }
  }

  /** 1. Walks the snapshot: makes the directories, lists the files and links. */
  private async walk(treeId: Uint8Array, rel: string, dir: string, fresh: boolean): Promise<void> {
    this.realDir(dir);
    let nodes;
    try {
      ({ nodes } = await this.treeLoads(() => this.repo.loadTree(treeId)));
    } catch (e) {
      return this.treeFailed(dir, e);
    }
    const subdirs: Promise<void>[] = [];
    for (const node of nodes) {
      const childRel = rel ? `${rel}/${node.name}` : node.name;
      if (!this.included(childRel)) continue;
      const path = this.inside(join(dir, node.name));
      if (node.kind === 'file') this.files.push({ path, node, fresh, state: 'todo' });
      else if (node.kind === 'symlink') this.links.push({ path, node });
      else {
        let made: boolean;
        try {
          mkdirSync(path);
          made = true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          made = false;
        }
        subdirs.push(
          this.walk(node.subtree, childRel, path, made).then(
            () => void this.dirs.push({ path, node }),
          ),
        );
      }
    }
    await Promise.all(subdirs);
  }

  /** A directory's tree could not be read: the folder is reported, the walk goes on. */
  private treeFailed(dir: string, e: unknown): void {
    const details = isKinvaultError(e) ? e.details : {};
    if (!('pack' in details)) throw e;
    const hex = String(details.blob);
    this.failures.unreadable(details.pack as string | null, [hex], e);
    const p = this.failures.problem([hex])!;
    this.failures.fail(dir, {
      pack: p.pack,
      reason: `${p.reason}; the folder's contents could not be listed`,
    });
  }

  /** 2. Skips files already correct at their path; returns the others. */
  private async leaveCorrectFiles(files: FileJob[]): Promise<FileJob[]> {
    const todo: FileJob[] = [];
    for (const f of files) {
      if (f.fresh) {
        this.absent.add(f.path);
        todo.push(f);
      } else if (await this.alreadyThere(f.path, f.node)) {
        f.state = 'skipped';
        this.summary.files_skipped++;
        this.options.onProgress?.(this.summary);
      } else todo.push(f);
    }
    return todo;
  }

  /** True when `path` already holds exactly this file (same size, mtime and chunk ids). */
  private async alreadyThere(path: string, node: FileNode): Promise<boolean> {
    const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (!st) this.absent.add(path);
    if (
      !st?.isFile() ||
      Number(st.size) !== node.size ||
      microseconds(st.mtimeNs) !== microseconds(node.mtimeNs)
    )
      return false;
    const fh = await open(path, 'r');
    try {
      let i = 0;
      const source = {
        read: async (into: Uint8Array) => (await fh.read(into, 0, into.byteLength, null)).bytesRead,
      };
      for await (const c of chunkSource(source, this.chunker)) {
        const expected = node.chunks[i++];
        if (!expected || !bytesEqual(blobId(this.keys, BlobType.data, c.data), expected))
          return false;
      }
      return i === node.chunks.length;
    } finally {
      await fh.close();
    }
  }

  /** 3. Hard links: each further path of a file becomes a link to its restored first path. */
  private link(file: FileJob, to: FileJob): void {
    if (to.state === 'failed') return failFile(this.failures, file, to.problem!);
    const t = utimeArg(file.node.mtimeNs);
    const how = linkInto(
      to.path,
      file.path,
      tempName(file.path),
      { mode: file.node.mode, mtime: t },
      place,
    );
    file.state = how === 'kept' ? 'skipped' : 'done';
    if (how === 'kept') this.summary.files_skipped++;
    else this.summary.files_restored++;
    if (how === 'linked') this.summary.hard_links++;
  }

  /** 4. Symbolic links. */
  private async makeSymlinks(): Promise<void> {
    for (const { path, node } of this.links) {
      const existing = lstatSync(path, { throwIfNoEntry: false });
      if (existing?.isSymbolicLink() && readlinkSync(path) === node.target) continue;
      if (existing?.isDirectory())
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `Refusing to replace the directory ${path} with a link.`,
        );
      if (existing) rmSync(path);
      symlinkSync(node.target, path);
      const t = utimeArg(node.mtimeNs);
      await lutimes(path, t, t);
      this.summary.symlinks++;
    }
  }

  /** 5. Each directory's mode and mtime, after its contents (unchanged ones left alone). */
  private finishDirs(): void {
    for (const { path, node } of this.dirs) {
      const st = lstatSync(path, { bigint: true });
      if (Number(st.mode & 0o7777n) !== node.mode) chmodSync(path, node.mode);
      if (microseconds(st.mtimeNs) !== microseconds(node.mtimeNs)) {
        const t = utimeArg(node.mtimeNs);
        utimesSync(path, t, t);
      }
      this.summary.dirs++;
    }
  }

  /** The error for a full disk: whose, how much is still to write, how much is free. */
  private diskFullError(errno: string, cause: unknown): KinvaultError {
    const files = this.toWrite.length ? this.toWrite : this.files;
    const needed = files.reduce((n, f) => n + (f.state === 'todo' ? f.node.size : 0), 0);
    let free: number | null = null;
    try {
      const st = statfsSync(this.target);
      free = Number(st.bavail) * Number(st.bsize);
    } catch {
      // unknown: said so below
    }
    return new KinvaultError(
      'DISK_FULL',
      `The disk holding ${this.target} is full: this restore needs ${formatBytes(needed)} more (${needed.toLocaleString('en-US')} bytes not yet written), ${free === null ? 'an unknown amount' : formatBytes(free)} free. Free space or restore elsewhere (--target); files already restored are kept and a re-run skips them.`,
      { cause, details: { errno, target: this.target, needed, free } },
    );
  }
}

/** The entries of a directory in a snapshot (PATH relative to the snapshot root). */
export async function list(repo: RemoteRepository, ref: string, path = '') {
  const snap = await repo.findSnapshot(ref);
  let treeId = snap.snapshot.tree;
  const parts = normalise(path).split('/').filter(Boolean);
  for (const [i, part] of parts.entries()) {
    const node = (await repo.loadTree(treeId)).nodes.find((n) => n.name === part);
    if (!node)
      throw new KinvaultError(
        'NOT_FOUND',
        `${parts.slice(0, i + 1).join('/')} is not in snapshot ${snap.id.slice(0, 12)}.`,
      );
    if (node.kind !== 'dir') return { snapshot: snap.id, entries: [node] };
    treeId = node.subtree;
  }
  return { snapshot: snap.id, entries: (await repo.loadTree(treeId)).nodes };
}
