/**
 * kinvault restore: writes a snapshot (or parts of it) under a target directory.
 * Every blob is verified (AEAD and id). Paths come from validated tree names, and every
 * directory written into is checked to be a real directory inside the target, so
 * nothing can escape it. Files already present and correct are skipped.
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  lutimes,
  mkdir,
  open,
  readlink,
  rename,
  rm,
  symlink,
  utimes,
} from 'node:fs/promises';
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
  type FileNode,
  type RepositoryKeys,
} from '@kinvault/format';
import type { Located, RemoteRepository } from './repository.js';
import { mapLimit } from './backup/batch.js';
import { writeAll } from './fs-write.js';

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
  const realDir = async (path: string) => {
    const st = await lstat(path);
    if (!st.isDirectory() || st.isSymbolicLink()) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to restore into ${path}: it is not a directory (a link or file is in the way). Move it aside or restore elsewhere.`,
      );
    }
  };

  /** True when `path` already holds exactly this file (same size, mtime and chunk ids). */
  const alreadyThere = async (path: string, node: FileNode): Promise<boolean> => {
    const st = await lstat(path, { bigint: true }).catch(() => null);
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

  const writeFile = async (
    path: string,
    node: FileNode,
    where: Map<string, Located>,
    prefetched?: Map<string, Uint8Array>,
  ): Promise<void> => {
    if (await alreadyThere(path, node)) {
      summary.files_skipped++;
      return;
    }
    const tmp = join(path, '..', `.kinvault-restore-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    let written = 0;
    try {
      for (const id of node.chunks) {
        const data =
          prefetched?.get(toHex(id)) ??
          (await repo.loadBlob(BlobType.data, id, where.get(toHex(id))));
        await writeAll(fh, [data]);
        written += data.byteLength;
      }
      if (written !== node.size) {
        throw new KinvaultError(
          'PACK_CORRUPT',
          `${path}: the snapshot says ${node.size} bytes but its chunks hold ${written}.`,
        );
      }
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await chmod(tmp, node.mode);
    const t = Number(node.mtimeNs) / 1e9;
    await utimes(tmp, t, t);
    const existing = await lstat(path).catch(() => null);
    if (existing?.isDirectory())
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to replace the directory ${path} with a file.`,
      );
    await rename(tmp, path);
    summary.files_restored++;
    summary.bytes_written += written;
  };

  const walk = async (treeId: Uint8Array, rel: string, dir: string): Promise<void> => {
    await realDir(dir);
    const { nodes } = await repo.loadTree(treeId);
    // The directory's files first, many at a time, with all their chunks located in one
    // batch; then its subdirectories and links.
    const files = nodes.filter(
      (n): n is FileNode => n.kind === 'file' && included(rel ? `${rel}/${n.name}` : n.name),
    );
    const where = await repo.locate([...new Set(files.flatMap((f) => f.chunks.map(toHex)))]);
    // Small files' blobs come in a few coalesced range reads, in groups of up to 32 MiB.
    const small = files.filter((f) => f.size <= 1024 * 1024);
    for (let i = 0; i < small.length;) {
      let bytes = 0;
      let j = i;
      while (j < small.length && (j === i || bytes + small[j]!.size <= 32 * 1024 * 1024))
        bytes += small[j++]!.size;
      const group = small.slice(i, j);
      const prefetched = await repo.loadBlobs(
        BlobType.data,
        group.flatMap((f) => f.chunks),
        where,
      );
      await mapLimit(group, 8, async (node) => {
        await writeFile(inside(join(dir, node.name)), node, where, prefetched);
        onFile?.(summary);
      });
      i = j;
    }
    await mapLimit(
      files.filter((f) => f.size > 1024 * 1024),
      8,
      async (node) => {
        await writeFile(inside(join(dir, node.name)), node, where);
        onFile?.(summary);
      },
    );
    for (const node of nodes) {
      const childRel = rel ? `${rel}/${node.name}` : node.name;
      if (!included(childRel) || node.kind === 'file') continue;
      const path = inside(join(dir, node.name));
      if (node.kind === 'dir') {
        await mkdir(path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        await walk(node.subtree, childRel, path);
        await chmod(path, node.mode);
        const t = Number(node.mtimeNs) / 1e9;
        await utimes(path, t, t);
        summary.dirs++;
      } else {
        const existing = await lstat(path).catch(() => null);
        if (existing?.isSymbolicLink() && (await readlink(path)) === node.target) continue;
        if (existing && !existing.isDirectory()) await rm(path);
        else if (existing)
          throw new KinvaultError(
            'INVALID_ARGUMENT',
            `Refusing to replace the directory ${path} with a link.`,
          );
        await symlink(node.target, path);
        const t = Number(node.mtimeNs) / 1e9;
        await lutimes(path, t, t);
        summary.symlinks++;
      }
    }
  };

  await walk(snap.snapshot.tree, '', target);
  summary.duration_s = (Date.now() - started) / 1000;
  return summary;
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
