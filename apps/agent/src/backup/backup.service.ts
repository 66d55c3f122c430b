/**
 * kinvault backup: scan (phase one), then chunk → dedup query → seal → pack → upload
 * the changed files and the trees (phase two), then commit the snapshot.
 */
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import {
  BlobType,
  BufferPool,
  bytesEqual,
  chunkSource,
  encodeTree,
  gearTable,
  prepareChunker,
  sealSnapshot,
  sortNodes,
  toHex,
  workerBlobPacker,
  type TreeNode,
} from '@kinvault/format';
import { JsonFileUrlStorage } from '../transport/url-storage.js';
import { openSession } from '../session.js';
import { Batcher, ByteBudget, mapLimit } from './batch.js';
import { scan, type ScanDir, type ScanFile, type ScanTotals } from './scan.js';
import { spool } from './spool.js';

export interface BackupProgress {
  totals: ScanTotals;
  filesDone: number;
  bytesRead: number;
  bytesUploaded: number;
  startedAt: number;
}

export interface BackupSummary {
  snapshot: string;
  parent: string | null;
  files_seen: number;
  files_changed: number;
  dirs: number;
  bytes_seen: number;
  bytes_read: number;
  bytes_uploaded: number;
  packs_uploaded: number;
  blobs_new: number;
  resumed_packs: number;
  duration_s: number;
  partial: boolean;
  errors: { path: string; message: string }[];
}

export interface BackupOptions {
  paths: string[];
  excludes: string[];
  stateDir: string;
  threads?: number;
  onProgress?: (p: BackupProgress) => void;
}

const MAX_RECORDED_ERRORS = 1000;

export async function backup(opts: BackupOptions): Promise<BackupSummary> {
  const started = Date.now();
  const session = await openSession(opts.stateDir);
  const { state, keys, conn, api, repo, paths: p } = session;
  const packsUsed = new Set<string>();
  const progress: BackupProgress = {
    totals: { files: 0, dirs: 0, bytes: 0, changedFiles: 0, changedBytes: 0 },
    filesDone: 0,
    bytesRead: 0,
    bytesUploaded: 0,
    startedAt: started,
  };
  let packsUploaded = 0;
  const sp = spool(p.spool, api, conn, new JsonFileUrlStorage(p.uploads), async (u) => {
    packsUsed.add(u.name);
    progress.bytesUploaded += u.size;
    if (u.size > 0) packsUploaded++;
    if (u.info) await repo.rememberPack(u.name, u.info.entries);
  });

  try {
    const resumed = await sp.resume();
    const paths = [...new Set(opts.paths.map((x) => resolve(x)))].sort();
    const mine = (await repo.snapshots()).filter(
      (s) =>
        s.device === state.device && [...s.snapshot.paths].sort().join('\0') === paths.join('\0'),
    );
    const parent = mine[mine.length - 1] ?? null;
    const scanned = await scan(paths, opts.excludes, parent?.snapshot.tree ?? null, (id) =>
      repo.loadTree(id),
    );
    progress.totals = scanned.totals;
    const errors = [...scanned.errors];

    const chunker = prepareChunker(gearTable(keys.cdcSeed));
    const buffers = new BufferPool();
    const packer = workerBlobPacker(keys, sp.openSink, {
      threads: opts.threads,
      recycle: (b) => buffers.give(b),
    });
    const dedup = new Batcher<string, string | null>(async (ids) => repo.have(ids), null);
    const seen = new Set<string>();
    // Chunks in flight across all files (bounds memory whatever the file sizes).
    const budget = new ByteBudget(64 * 1024 * 1024);
    const reused: string[] = [];
    let blobsNew = 0;
    let bytesNew = 0;

    const store = async (type: BlobType, data: Uint8Array): Promise<Uint8Array> => {
      const held = await packer.hash(type, data);
      const hex = toHex(held.id);
      if (seen.has(hex)) {
        packer.drop(held);
        return held.id;
      }
      seen.add(hex);
      const pack = await dedup.ask(hex);
      if (pack) {
        packer.drop(held);
        packsUsed.add(pack);
        return held.id;
      }
      blobsNew++;
      if (type === BlobType.data) bytesNew += held.size;
      await packer.seal(held);
      return held.id;
    };

    const backupFile = async (f: ScanFile): Promise<TreeNode | null> => {
      if (f.reuse) {
        for (const c of f.reuse) reused.push(toHex(c));
        progress.filesDone++;
        return { ...f, kind: 'file', size: f.size, chunks: f.reuse };
      }
      let fh;
      try {
        fh = await open(f.path, 'r');
      } catch (e) {
        errors.push({ path: f.path, message: (e as Error).message });
        return null;
      }
      try {
        const pending: Promise<Uint8Array>[] = [];
        let size = 0;
        const source = {
          read: async (into: Uint8Array) =>
            (await fh.read(into, 0, into.byteLength, null)).bytesRead,
        };
        for await (const chunk of chunkSource(source, chunker, {
          allocate: (n) => buffers.take(n),
          sizeHint: f.size,
        })) {
          size += chunk.data.byteLength;
          progress.bytesRead += chunk.data.byteLength;
          const n = chunk.data.byteLength;
          await budget.take(n);
          pending.push(store(BlobType.data, chunk.data).finally(() => budget.give(n)));
          opts.onProgress?.(progress);
        }
        const chunks = await Promise.all(pending);
        progress.filesDone++;
        opts.onProgress?.(progress);
        return {
          name: f.name,
          mode: f.mode,
          mtimeNs: f.mtimeNs,
          ctimeNs: f.ctimeNs,
          inode: f.inode,
          uid: f.uid,
          gid: f.gid,
          kind: 'file',
          size,
          chunks,
        };
      } catch (e) {
        errors.push({ path: f.path, message: (e as Error).message });
        return null;
      } finally {
        await fh.close();
      }
    };

    const backupDir = async (d: ScanDir): Promise<Uint8Array> => {
      const files = d.children.filter((c): c is ScanFile => c.kind === 'file');
      const nodes: TreeNode[] = [];
      for (const c of d.children) {
        const base = {
          name: c.name,
          mode: c.mode,
          mtimeNs: c.mtimeNs,
          ctimeNs: c.ctimeNs,
          inode: c.inode,
          uid: c.uid,
          gid: c.gid,
        };
        if (c.kind === 'dir') nodes.push({ ...base, kind: 'dir', subtree: await backupDir(c) });
        else if (c.kind === 'symlink') nodes.push({ ...base, kind: 'symlink', target: c.target });
      }
      // Many small files at once (they wait on round trips), few large ones (each holds a
      // 16 MiB chunking window): memory stays bounded either way.
      const small = files.filter((f) => f.reuse || f.size < 1024 * 1024);
      const large = files.filter((f) => !f.reuse && f.size >= 1024 * 1024);
      const [a, b] = await Promise.all([
        mapLimit(small, 32, backupFile),
        mapLimit(large, 3, backupFile),
      ]);
      for (const n of [...a, ...b]) if (n) nodes.push(n);
      const encoded = encodeTree({ nodes: sortNodes(nodes) });
      // An unchanged directory encodes exactly as before: reuse its id, no round trip.
      if (d.parentTree) {
        const previous = await repo.loadTree(d.parentTree).catch(() => null);
        if (previous && bytesEqual(encodeTree(previous), encoded)) {
          reused.push(toHex(d.parentTree));
          return d.parentTree;
        }
      }
      const id = await store(BlobType.tree, encoded.slice());
      await repo.rememberTree(id, encoded).catch(() => {});
      return id;
    };

    let tree: Uint8Array;
    try {
      tree = await backupDir(scanned.root);
      await packer.flush();
      await sp.drain();
    } finally {
      await packer.close();
    }
    // Packs holding the chunks of unchanged files, so the snapshot lists all it needs.
    for (const pack of (await repo.have([...new Set(reused)])).values()) packsUsed.add(pack);

    // Manifest strings hold at most 64 KiB each: keep paths and messages short.
    const recorded = errors
      .slice(0, MAX_RECORDED_ERRORS)
      .map((e) => ({ path: e.path.slice(0, 4096), message: e.message.slice(0, 1000) }));
    if (errors.length > MAX_RECORDED_ERRORS)
      recorded.push({
        path: '',
        message: `${errors.length - MAX_RECORDED_ERRORS} more errors not recorded`,
      });
    const sealed = sealSnapshot(keys, {
      startNs: BigInt(started) * 1_000_000n,
      endNs: BigInt(Date.now()) * 1_000_000n,
      tree,
      parent: parent ? Buffer.from(parent.id, 'hex') : null,
      hostname: hostname(),
      device: state.device,
      paths,
      tags: [],
      partial: recorded.length > 0,
      errors: recorded,
      stats: {
        files: scanned.totals.files,
        dirs: scanned.totals.dirs,
        bytes: scanned.totals.bytes,
        filesNew: scanned.totals.changedFiles,
        bytesNew,
      },
    });
    await api.snapshots.commit.mutate({
      id: sealed.id,
      sealed: Buffer.from(sealed.bytes).toString('base64'),
      packs: [...packsUsed],
      totals: { files: scanned.totals.files, bytes: scanned.totals.bytes },
    });
    return {
      snapshot: sealed.id,
      parent: parent?.id ?? null,
      files_seen: scanned.totals.files,
      files_changed: scanned.totals.changedFiles,
      dirs: scanned.totals.dirs,
      bytes_seen: scanned.totals.bytes,
      bytes_read: progress.bytesRead,
      bytes_uploaded: progress.bytesUploaded,
      packs_uploaded: packsUploaded,
      blobs_new: blobsNew,
      resumed_packs: resumed,
      duration_s: (Date.now() - started) / 1000,
      partial: errors.length > 0,
      errors,
    };
  } finally {
    session.close();
  }
}
