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
  toHex,
  type DirNode,
  type FileNode,
  type SymlinkNode,
  type RepositoryKeys,
} from '@kinvault/format';
import type { RemoteRepository } from './repository.js';
import pLimit from 'p-limit';
import { restoreWriters } from './restore-writer.js';

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

  await mkdir(target, { recursive: true });
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
  const files: { path: string; node: FileNode }[] = [];
  const links: { path: string; node: SymlinkNode }[] = [];
  const dirs: { path: string; node: DirNode }[] = []; // children before parents
  const walk = async (treeId: Uint8Array, rel: string, dir: string): Promise<void> => {
    realDir(dir);
    const { nodes } = await repo.loadTree(treeId);
    for (const node of nodes) {
      const childRel = rel ? `${rel}/${node.name}` : node.name;
      if (!included(childRel)) continue;
      const path = inside(join(dir, node.name));
      if (node.kind === 'file') files.push({ path, node });
      else if (node.kind === 'symlink') links.push({ path, node });
      else {
        try {
          mkdirSync(path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        await walk(node.subtree, childRel, path);
        dirs.push({ path, node });
      }
    }
  };
  await walk(snap.snapshot.tree, '', target);

  // 2. Leave files that are already correct; find where every chunk of the others is.
  const todo: typeof files = [];
  for (const f of files) {
    if (await alreadyThere(f.path, f.node)) {
      summary.files_skipped++;
      onFile?.(summary);
    } else todo.push(f);
  }
  const where = await repo.locate([...new Set(todo.flatMap((f) => f.node.chunks.map(toHex)))]);
  // In pack order, so neighbouring files come from neighbouring bytes.
  const position = new Map(
    todo.map((f) => {
      const first = f.node.chunks[0];
      const loc = first ? where.get(toHex(first)) : undefined;
      return [f, loc ? `${loc.pack}:${String(loc.entry.offset).padStart(12, '0')}` : ''];
    }),
  );
  todo.sort((a, b) => {
    const x = position.get(a)!;
    const y = position.get(b)!;
    return x < y ? -1 : x > y ? 1 : 0;
  });

  // 3. Small files in groups read with a few range requests; large ones chunk group by
  //    chunk group. A few of each at a time (bounded memory: about 10 × GROUP).
  const small = todo.filter((f) => f.node.size <= SMALL_FILE);
  const large = todo.filter((f) => f.node.size > SMALL_FILE);
  const smallGroups: (typeof small)[] = [];
  for (let i = 0, bytes = 0; i < small.length; i++) {
    if (i === 0 || bytes + small[i]!.node.size > GROUP) {
      smallGroups.push([]);
      bytes = 0;
    }
    smallGroups.at(-1)!.push(small[i]!);
    bytes += small[i]!.node.size;
  }
  const reads = pLimit(6);
  const largeFiles = pLimit(4);
  const writers = restoreWriters(keys);
  const finish = (node: FileNode, path: string) => ({
    path,
    size: node.size,
    mode: node.mode,
    mtime: Number(node.mtimeNs) / 1e9,
  });
  const done = (written: number) => {
    summary.files_restored++;
    summary.bytes_written += written;
    onFile?.(summary);
  };
  try {
    await Promise.all([
      ...smallGroups.map((group) =>
        reads(async () => {
          const ranges = await repo.readRanges(
            group.flatMap((f) => f.node.chunks),
            where,
          );
          await writers.write(
            ranges,
            // A new file is written in place: a crash leaves it short or with the wrong
            // mtime, so a re-run rewrites it. One that exists is replaced by a rename.
            group.map((f) => ({
              tmp: absent.has(f.path) ? f.path : tempName(f.path),
              create: true,
              position: 0,
              chunks: f.node.chunks.map(toHex),
              finish: finish(f.node, f.path),
            })),
          );
          for (const f of group) done(f.node.size);
        }),
      ),
      ...large.map((f) =>
        largeFiles(async () => {
          // Created here, filled group by group (possibly by different workers), then moved
          // into place once every group is written.
          const tmp = tempName(f.path);
          closeSync(openSync(tmp, 'wx', 0o600));
          try {
            // Groups are written in order (each starts where the bytes written so far
            // end); the next group is read while one is written.
            const parts = groups(f.node.chunks, (id) => where.get(toHex(id))?.entry.length ?? 0);
            const read = (i: number) =>
              i < parts.length ? reads(() => repo.readRanges(parts[i]!, where)) : null;
            let written = 0;
            let next = read(0);
            try {
              for (let i = 0; i < parts.length; i++) {
                const ranges = await next!;
                next = read(i + 1);
                written += await writers.write(ranges, [
                  { tmp, create: false, position: written, chunks: parts[i]!.map(toHex) },
                ]);
              }
            } finally {
              await next?.catch(() => {});
            }
            if (written !== f.node.size)
              throw new KinvaultError(
                'PACK_CORRUPT',
                `${f.path}: the snapshot says ${f.node.size} bytes but its chunks hold ${written}.`,
              );
            const fd = openSync(tmp, 'r');
            try {
              fchmodSync(fd, f.node.mode);
              const t = Number(f.node.mtimeNs) / 1e9;
              futimesSync(fd, t, t);
            } finally {
              closeSync(fd);
            }
            place(tmp, f.path);
            done(written);
          } catch (e) {
            rmSync(tmp, { force: true });
            throw e;
          }
        }),
      ),
    ]);
  } finally {
    await writers.close();
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
    const t = Number(node.mtimeNs) / 1e9;
    await lutimes(path, t, t);
    summary.symlinks++;
  }
  for (const { path, node } of dirs) {
    chmodSync(path, node.mode);
    const t = Number(node.mtimeNs) / 1e9;
    utimesSync(path, t, t);
    summary.dirs++;
  }

  // 5. Everything reaches the disk before we say it is restored: one filesystem sync
  //    instead of an fsync per file.
  await syncFilesystem(target);
  summary.duration_s = (Date.now() - started) / 1000;
  return summary;
}

/** Files up to this size are restored from groups of prefetched blobs. */
const SMALL_FILE = 1024 * 1024;
/** Bytes per coalesced read group. */
const GROUP = 16 * 1024 * 1024;

/** Splits ids into runs of at most GROUP bytes (at least one id each). */
function groups(ids: readonly Uint8Array[], size: (id: Uint8Array) => number): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let bytes = 0;
  for (const id of ids) {
    if (out.length === 0 || bytes + size(id) > GROUP) {
      out.push([]);
      bytes = 0;
    }
    out.at(-1)!.push(id);
    bytes += size(id);
  }
  return out;
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
