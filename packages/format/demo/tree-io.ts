/**
 * Backs a folder up into a local repository and restores a snapshot from it, using
 * the format core: chunks and trees go through a BlobPacker; blobs already in the
 * repository are not stored again.
 */
import {
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  symlink,
  chmod,
  lutimes,
  utimes,
} from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlobType,
  BufferPool,
  chunkSource,
  decodeTree,
  encodeTree,
  gearTable,
  prepareChunker,
  sortNodes,
  toHex,
  utimeArg,
  workerBlobPacker,
  type BlobPacker,
  type RepositoryKeys,
  type TreeNode,
} from '../src/index.js';
import { loadBlob, packFileSinks, type IndexedBlob } from './local-repository.js';

export interface BackupStats {
  files: number;
  dirs: number;
  bytes: number;
  filesNew: number;
  bytesNew: number;
  blobsNew: number;
  packs: number;
  errors: { path: string; message: string }[];
}

export type Progress = (s: BackupStats) => void;

/** Limits how many blobs are being hashed/sealed at once. */
class Limiter {
  private readonly running = new Set<Promise<unknown>>();
  constructor(private readonly max: number) {}
  /** Starts `task` once a slot is free; `done` settles when the task does. */
  async start<T>(task: () => Promise<T>): Promise<{ done: Promise<T> }> {
    while (this.running.size >= this.max) await Promise.race(this.running);
    const done = task();
    const tracked: Promise<unknown> = done
      .catch(() => {})
      .finally(() => this.running.delete(tracked));
    this.running.add(tracked);
    return { done };
  }
}

export async function backupFolder(
  repo: string,
  keys: RepositoryKeys,
  folder: string,
  known: Map<string, IndexedBlob>,
  options: { threads?: number; progress?: Progress } = {},
): Promise<{ tree: Uint8Array; stats: BackupStats }> {
  const chunker = prepareChunker(gearTable(keys.cdcSeed));
  const stats: BackupStats = {
    files: 0,
    dirs: 0,
    bytes: 0,
    filesNew: 0,
    bytesNew: 0,
    blobsNew: 0,
    packs: 0,
    errors: [],
  };
  const stored = new Set(known.keys());
  const limiter = new Limiter((options.threads ?? 2) * 4);
  const buffers = new BufferPool();
  const packer: BlobPacker = workerBlobPacker(keys, packFileSinks(repo), {
    threads: options.threads,
    recycle: (b) => buffers.give(b),
  });

  async function store(
    type: BlobType,
    data: Uint8Array,
  ): Promise<{ id: Uint8Array; isNew: boolean }> {
    const held = await packer.hash(type, data);
    const key = toHex(held.id);
    if (stored.has(key)) {
      packer.drop(held);
      return { id: held.id, isNew: false };
    }
    stored.add(key);
    stats.blobsNew++;
    if (type === BlobType.data) stats.bytesNew += held.size;
    if (await packer.seal(held)) stats.packs++;
    return { id: held.id, isNew: true };
  }

  async function file(
    path: string,
  ): Promise<{ chunks: Uint8Array[]; isNew: boolean; size: number }> {
    const fh = await open(path, 'r');
    try {
      const pending: Promise<{ id: Uint8Array; isNew: boolean }>[] = [];
      let read = 0;
      const source = {
        read: async (into: Uint8Array) => (await fh.read(into, 0, into.byteLength, null)).bytesRead,
      };
      for await (const chunk of chunkSource(source, chunker, {
        allocate: (n) => buffers.take(n),
      })) {
        stats.bytes += chunk.data.byteLength;
        read += chunk.data.byteLength;
        pending.push((await limiter.start(() => store(BlobType.data, chunk.data))).done);
      }
      const results = await Promise.all(pending);
      // The size is what was read, so it always agrees with the chunks even if the file
      // changed since it was listed.
      return { chunks: results.map((r) => r.id), isNew: results.some((r) => r.isNew), size: read };
    } finally {
      await fh.close();
    }
  }

  async function dir(path: string): Promise<Uint8Array> {
    stats.dirs++;
    const nodes: TreeNode[] = [];
    for (const name of await readdir(path)) {
      const full = join(path, name);
      try {
        const st = await lstat(full, { bigint: true });
        const base = {
          name,
          mode: Number(st.mode & 0o7777n),
          mtimeNs: st.mtimeNs,
          ctimeNs: st.ctimeNs,
          inode: st.ino,
          uid: Number(st.uid),
          gid: Number(st.gid),
        };
        if (st.isDirectory()) {
          nodes.push({ ...base, kind: 'dir', subtree: await dir(full) });
        } else if (st.isFile()) {
          const { chunks, isNew, size } = await file(full);
          stats.files++;
          if (isNew) stats.filesNew++;
          nodes.push({ ...base, kind: 'file', size, chunks });
          options.progress?.(stats);
        } else if (st.isSymbolicLink()) {
          nodes.push({ ...base, kind: 'symlink', target: await readlink(full) });
        } else {
          stats.errors.push({
            path: full,
            message: 'not a file, directory or symbolic link: skipped',
          });
        }
      } catch (error) {
        stats.errors.push({
          path: full,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }
    return (await store(BlobType.tree, encodeTree({ nodes: sortNodes(nodes) }))).id;
  }

  try {
    const tree = await dir(folder);
    stats.packs += (await packer.flush()).length;
    return { tree, stats };
  } finally {
    await packer.close();
  }
}

/** Restores a tree into `target` (which must be empty or missing). */
export async function restoreTree(
  keys: RepositoryKeys,
  index: Map<string, IndexedBlob>,
  tree: Uint8Array,
  target: string,
): Promise<{ files: number; bytes: number }> {
  const totals = { files: 0, bytes: 0 };
  await mkdir(target, { recursive: true });
  async function dir(id: Uint8Array, path: string): Promise<void> {
    const { nodes } = decodeTree(await loadBlob(keys, index, id, BlobType.tree));
    for (const node of nodes) {
      const full = join(path, node.name);
      const mtime = utimeArg(node.mtimeNs);
      if (node.kind === 'dir') {
        await mkdir(full);
        await dir(node.subtree, full);
        await chmod(full, node.mode);
        await utimes(full, mtime, mtime);
      } else if (node.kind === 'file') {
        const fh = await open(full, 'wx', 0o600);
        try {
          let written = 0;
          for (const chunk of node.chunks) {
            const data = await loadBlob(keys, index, chunk, BlobType.data);
            for (let at = 0; at < data.byteLength;)
              at += (await fh.write(data, at, data.byteLength - at)).bytesWritten;
            written += data.byteLength;
          }
          if (written !== node.size)
            throw new Error(
              `${full}: the snapshot says ${node.size} bytes, its chunks hold ${written}`,
            );
          totals.bytes += written;
        } finally {
          await fh.close();
        }
        await chmod(full, node.mode);
        await utimes(full, mtime, mtime);
        totals.files++;
      } else {
        await symlink(node.target, full);
        await lutimes(full, mtime, mtime);
      }
    }
  }
  await dir(tree, target);
  return totals;
}
