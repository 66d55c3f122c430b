/**
 * kinvault restore: writes a snapshot (or parts of it) under a target directory.
 * Every blob is verified (AEAD and id). Paths come from validated tree names, and every
 * directory written into is checked to be a real directory inside the target, so
 * nothing can escape it. Files already present and correct are skipped.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { lutimes, mkdir, open } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { KinvaultError } from '@kinvault/protocol';
import {
  BlobType,
  blobId,
  bytesEqual,
  chunkSource,
  gearTable,
  prepareChunker,
  SEAL_OVERHEAD,
  toHex,
  utimeArg,
  type DirNode,
  type FileNode,
  type SymlinkNode,
  type RepositoryKeys,
} from '@kinvault/format';
import type { RemoteRepository } from './repository.js';
import pLimit from 'p-limit';
import { restoreWriters, type FilePiece } from './restore-writer.js';

export interface RestoreSummary {
  snapshot: string;
  files_restored: number;
  files_skipped: number;
  bytes_written: number;
  dirs: number;
  symlinks: number;
  duration_s: number;
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
  includes: string[],
  onFile?: (s: RestoreSummary) => void,
): Promise<RestoreSummary> {
  const started = Date.now();
  const snap = await repo.findSnapshot(ref);
  const target = resolve(targetDir);
  const wanted = includes.map(normalise);
  const included = (rel: string) =>
    wanted.length === 0 ||
    wanted.some((w) => rel === w || rel.startsWith(w + '/') || w.startsWith(rel + '/'));
  const summary: RestoreSummary = {
    snapshot: snap.id,
    files_restored: 0,
    files_skipped: 0,
    bytes_written: 0,
    dirs: 0,
    symlinks: 0,
    duration_s: 0,
  };
  const chunker = prepareChunker(gearTable(keys.cdcSeed));

  // Directories this restore created hold nothing it did not write: their files need no
  // check for an earlier copy (20,000 lstat calls fewer for a restore into a new folder).
  const targetIsNew = (await mkdir(target, { recursive: true })) !== undefined;
  const inside = (path: string) => {
    const r = relative(target, path);
    if (r.startsWith('..') || r.startsWith(sep) || resolve(target, r) !== path) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to write ${path}: it is outside the target ${target}.`,
      );
    }
    return path;
  };
  const realDir = (path: string) => {
    const st = lstatSync(path);
    if (!st.isDirectory() || st.isSymbolicLink()) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to restore into ${path}: it is not a directory (a link or file is in the way). Move it aside or restore elsewhere.`,
      );
    }
  };

  /** True when `path` already holds exactly this file (same size, mtime and chunk ids). */
  const absent = new Set<string>();
  const alreadyThere = async (path: string, node: FileNode): Promise<boolean> => {
    const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (!st) absent.add(path);
    if (
      !st?.isFile() ||
      Number(st.size) !== node.size ||
      st.mtimeNs / 1000n !== node.mtimeNs / 1000n
    )
      return false;
    const fh = await open(path, 'r');
    try {
      let i = 0;
      const source = {
        read: async (into: Uint8Array) => (await fh.read(into, 0, into.byteLength, null)).bytesRead,
      };
      for await (const c of chunkSource(source, chunker)) {
        const expected = node.chunks[i++];
        if (!expected || !bytesEqual(blobId(keys, BlobType.data, c.data), expected)) return false;
      }
      return i === node.chunks.length;
    } finally {
      await fh.close();
    }
  };

  const tempName = (path: string) =>
    join(path, '..', `.kinvault-restore-${randomBytes(6).toString('hex')}`);
  /** Moves a finished temp file into place (never over a directory). */
  const place = (tmp: string, path: string) => {
    try {
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `Refusing to replace the directory ${path} with a file.`,
        );
      throw e;
    }
  };

  // 1. Walk the snapshot: make the directories, list the files and links.
  const files: { path: string; node: FileNode; fresh: boolean }[] = [];
  const links: { path: string; node: SymlinkNode }[] = [];
  const dirs: { path: string; node: DirNode }[] = []; // children before parents
  // Subdirectories are walked side by side: without the local tree cache (a new or
  // rebuilt machine) each tree is a round trip to the coordinator.
  const treeLoads = pLimit(8);
  const walk = async (
    treeId: Uint8Array,
    rel: string,
    dir: string,
    fresh: boolean,
  ): Promise<void> => {
    realDir(dir);
    const { nodes } = await treeLoads(() => repo.loadTree(treeId));
    const subdirs: Promise<void>[] = [];
    for (const node of nodes) {
      const childRel = rel ? `${rel}/${node.name}` : node.name;
      if (!included(childRel)) continue;
      const path = inside(join(dir, node.name));
      if (node.kind === 'file') files.push({ path, node, fresh });
      else if (node.kind === 'symlink') links.push({ path, node });
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
          walk(node.subtree, childRel, path, made).then(() => void dirs.push({ path, node })),
        );
      }
    }
    await Promise.all(subdirs);
  };
  await walk(snap.snapshot.tree, '', target, targetIsNew);

  // 2. Leave files that are already correct; find where every chunk of the others is.
  const todo: typeof files = [];
  for (const f of files) {
    if (f.fresh) {
      absent.add(f.path);
      todo.push(f);
    } else if (await alreadyThere(f.path, f.node)) {
      summary.files_skipped++;
      onFile?.(summary);
    } else todo.push(f);
  }
  const where = await repo.locate([...new Set(todo.flatMap((f) => f.node.chunks.map(toHex)))]);

  // 3. Pack by pack: each pack's blobs are read with a few range requests and written
  //    wherever they belong, so a photo library takes about one request per pack rather
  //    than several per file (a backup interleaves the chunks of files it reads at the
  //    same time). A file whose chunks all come from one pack is created, filled and
  //    finished by one request; a file spread over several packs is created first (under
  //    a temporary name), filled piece by piece as its packs arrive, and finished here.
  interface Spread {
    path: string;
    tmp: string;
    node: FileNode;
    /** Pieces not yet written. */
    left: number;
  }
  const pieces = new Map<string, FilePiece[]>(); // by pack
  const blobsOf = new Map<string, Map<string, Uint8Array>>(); // by pack: hex → id
  const spreadOf = new Map<FilePiece, Spread>();
  const spread: Spread[] = [];
  const add = (pack: string, piece: FilePiece) => {
    const list = pieces.get(pack);
    if (list) list.push(piece);
    else pieces.set(pack, [piece]);
  };
  const finish = (node: FileNode, path: string) => ({
    path,
    size: node.size,
    mode: node.mode,
    mtime: utimeArg(node.mtimeNs),
  });
  /** Sets mode and mtime of a complete file and moves it into place. */
  const complete = (tmp: string, path: string, node: FileNode) => {
    const fd = openSync(tmp, 'r');
    try {
      fchmodSync(fd, node.mode);
      const t = utimeArg(node.mtimeNs);
      futimesSync(fd, t, t);
    } finally {
      closeSync(fd);
    }
    place(tmp, path);
    summary.files_restored++;
  };
  try {
    for (const f of todo) {
      // Pieces: runs of consecutive chunks of the file that lie in the same pack.
      const runs: { pack: string; position: number; chunks: string[] }[] = [];
      let at = 0;
      for (const id of f.node.chunks) {
        const hex = toHex(id);
        const loc = where.get(hex);
        if (!loc)
          throw new KinvaultError(
            'PACK_CORRUPT',
            `Blob ${hex} of ${f.path} is in no stored pack: the snapshot is damaged or its packs were lost. Run a check.`,
          );
        let ids = blobsOf.get(loc.pack);
        if (!ids) blobsOf.set(loc.pack, (ids = new Map()));
        ids.set(hex, id);
        const last = runs.at(-1);
        if (last?.pack === loc.pack) last.chunks.push(hex);
        else runs.push({ pack: loc.pack, position: at, chunks: [hex] });
        at += loc.entry.length - SEAL_OVERHEAD;
      }
      if (at !== f.node.size)
        throw new KinvaultError(
          'PACK_CORRUPT',
          `${f.path}: the snapshot says ${f.node.size} bytes but its chunks hold ${at}.`,
        );
      // A new file is written in place: a crash leaves it short or with the wrong mtime,
      // so a re-run rewrites it. One that exists is replaced by a rename.
      const tmp = absent.has(f.path) && runs.length <= 1 ? f.path : tempName(f.path);
      if (runs.length === 0) {
        closeSync(openSync(tmp, 'wx', 0o600));
        complete(tmp, f.path, f.node);
        onFile?.(summary);
        continue;
      }
      if (runs.length === 1) {
        const r = runs[0]!;
        add(r.pack, {
          tmp,
          create: true,
          position: 0,
          chunks: r.chunks,
          finish: finish(f.node, f.path),
        });
        continue;
      }
      const s: Spread = { path: f.path, tmp, node: f.node, left: runs.length };
      closeSync(openSync(tmp, 'wx', 0o600));
      spread.push(s);
      for (const r of runs) {
        const piece: FilePiece = { tmp, create: false, position: r.position, chunks: r.chunks };
        spreadOf.set(piece, s);
        add(r.pack, piece);
      }
    }

    const packJobs = pLimit(6);
    const writers = restoreWriters(keys, (bytes) => repo.recycle(bytes));
    try {
      await Promise.all(
        [...pieces.keys()].sort().map((pack) =>
          packJobs(async () => {
            const ranges = await repo.readRanges([...blobsOf.get(pack)!.values()], where);
            const list = pieces.get(pack)!;
            // (not `+= await`: that reads the total before waiting, and jobs run side by side)
            const written = await writers.write(ranges, list);
            summary.bytes_written += written;
            for (const piece of list) {
              const s = spreadOf.get(piece);
              if (!s) summary.files_restored++;
              else if (--s.left === 0) complete(s.tmp, s.path, s.node);
            }
            onFile?.(summary);
          }),
        ),
      );
    } finally {
      await writers.close();
    }
  } catch (e) {
    // Spread files not yet finished are under temporary names: remove them.
    for (const s of spread) if (s.left > 0) rmSync(s.tmp, { force: true });
    throw e;
  }

  // 4. Links, then each directory's mode and mtime (after its contents are written).
  for (const { path, node } of links) {
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
    summary.symlinks++;
  }
  for (const { path, node } of dirs) {
    chmodSync(path, node.mode);
    const t = utimeArg(node.mtimeNs);
    utimesSync(path, t, t);
    summary.dirs++;
  }

  // 5. Everything reaches the disk before we say it is restored: one filesystem sync
  //    instead of an fsync per file.
  await syncFilesystem(target);
  summary.duration_s = (Date.now() - started) / 1000;
  return summary;
}

/**
 * Flushes the target's filesystem (`sync -f`, i.e. syncfs, on Linux; plain `sync`
 * elsewhere). If neither runs, the files are still written, just not yet forced out.
 */
async function syncFilesystem(target: string): Promise<void> {
  const run = (args: string[]) =>
    new Promise<boolean>((res) => execFile('sync', args, (e) => res(!e)));
  if (!(await run(['-f', target]))) await run([]);
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
        'INVALID_ARGUMENT',
        `${parts.slice(0, i + 1).join('/')} is not in snapshot ${snap.id.slice(0, 12)}.`,
      );
    if (node.kind !== 'dir') return { snapshot: snap.id, entries: [node] };
    treeId = node.subtree;
  }
  return { snapshot: snap.id, entries: (await repo.loadTree(treeId)).nodes };
}
