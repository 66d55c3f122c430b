/**
 * kinvault backup: scan (phase one), then chunk → dedup query → seal → pack → upload
 * the changed files and the trees (phase two), then commit the snapshot.
 */
import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import {
  BlobType,
  BufferPool,
  bytesEqual,
  chunkSource,
  fromHex,
  encodeTree,
  gearTable,
  prepareChunker,
  sealSnapshot,
  sortNodes,
  toHex,
  workerBlobPacker,
  type BlobPacker,
  type TreeNode,
} from '@kinvault/format';
import { JsonFileUrlStorage } from '../transport/url-storage.js';
import { openSession } from '../session.js';
import pLimit from 'p-limit';
import { Batcher, ByteBudget } from './batch.js';
import { scan, type ScanDir, type ScanFile, type ScanTotals } from './scan.js';
import { spool } from './spool.js';
import type { RemoteRepository } from '../repository.js';
import { KinvaultError } from '@kinvault/protocol';

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
  /** Unchanged files read again because the coordinator lost what they were stored in. */
  files_resent: number;
  duration_s: number;
  partial: boolean;
  errors: { path: string; message: string }[];
}

export interface BackupOptions {
  paths: string[];
  excludes: string[];
  stateDir: string;
  threads?: number;
  /** Read every file, even those unchanged since the parent snapshot. */
  full?: boolean;
  /** How long to keep retrying once the coordinator stops answering (default 90 s). */
  retryForS?: number;
  onProgress?: (p: BackupProgress) => void;
}

const MAX_RECORDED_ERRORS = 1000;

/** Refuses paths that do not exist before anything is done (nothing is committed). */
async function checkPaths(paths: readonly string[]): Promise<void> {
  if (paths.length === 0)
    throw new KinvaultError('INVALID_ARGUMENT', 'Name at least one file or folder to back up.');
  const missing: string[] = [];
  for (const path of paths) {
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error && (st.code === 'ENOENT' || st.code === 'ENOTDIR'))
      missing.push(resolve(path));
  }
  if (missing.length > 0)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Nothing was backed up: ${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist. Check the path${missing.length === 1 ? '' : 's'} (is a disk not mounted?).`,
    );
}

export async function backup(opts: BackupOptions): Promise<BackupSummary> {
  const started = Date.now();
  await checkPaths(opts.paths);
  const session = await openSession(opts.stateDir, { long: true, retryForS: opts.retryForS });
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
    const parentTree = opts.full ? null : (parent?.snapshot.tree ?? null);
    /** The parent snapshot's trees the scan read (by hex id). */
    const parentTrees = new Set<string>();
    const scanned = await scan(paths, opts.excludes, parentTree, (id) => {
      parentTrees.add(toHex(id));
      return repo.loadTree(id);
    });
    const resent = await rereadLost(scanned.root, scanned.totals, repo, packsUsed);
    progress.totals = scanned.totals;
    const errors = [...scanned.errors];

    const chunker = prepareChunker(gearTable(keys.cdcSeed));
    const buffers = new BufferPool();
    // Worker threads start with the first blob to store: a run that finds nothing
    // changed never pays for them (a second or more of CPU on a small machine).
    let packerStarted: BlobPacker | undefined;
    const packer = () =>
      (packerStarted ??= workerBlobPacker(keys, sp.openSink, {
        threads: opts.threads,
        recycle: (b) => buffers.give(b),
      }));
    // Dedup answers are not waited for (see `store`), so questions can gather for a while.
    const dedup = new Batcher<string, string | null>(async (ids) => repo.have(ids), null, 4096, 50);
    const seen = new Set<string>();
    // Chunks in flight across all files (bounds memory whatever the file sizes).
    const budget = new ByteBudget(64 * 1024 * 1024);
    let blobsNew = 0;
    let bytesNew = 0;

    // A blob's id is known once it is hashed; the dedup question and the sealing go on in
    // the background, so files finish at hashing speed and dedup questions travel in large
    // batches. The budget is given back when the blob is sealed or dropped.
    const background = new Set<Promise<void>>();
    let backgroundFailure: unknown;
    const store = async (type: BlobType, data: Uint8Array, budgeted = 0): Promise<Uint8Array> => {
      if (backgroundFailure !== undefined) throw backgroundFailure;
      let held;
      try {
        held = await packer().hash(type, data);
      } catch (e) {
        budget.give(budgeted);
        throw e;
      }
      const hex = toHex(held.id);
      if (seen.has(hex)) {
        packer().drop(held);
        budget.give(budgeted);
        return held.id;
      }
      seen.add(hex);
      const h = held;
      const job = dedup
        .ask(hex)
        .then(async (pack) => {
          if (pack) {
            packer().drop(h);
            packsUsed.add(pack);
            return;
          }
          blobsNew++;
          if (type === BlobType.data) bytesNew += h.size;
          await packer().seal(h);
        })
        .catch((e: unknown) => {
          backgroundFailure ??= e;
        })
        .finally(() => {
          budget.give(budgeted);
          background.delete(job);
        });
      background.add(job);
      return held.id;
    };
    /** Waits for every background dedup question and seal; throws the first failure. */
    const settle = async () => {
      while (background.size > 0) await Promise.all(background);
      if (backgroundFailure !== undefined) throw backgroundFailure;
    };
    const minChunk = chunker.params.minSize;

    const fileNode = (f: ScanFile, size: number, chunks: Uint8Array[]): TreeNode => ({
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
    });

    /** One read of a file: what it held, and its state when the read began and ended. */
    interface Read {
      size: number;
      chunks: Uint8Array[];
      before: FileState;
      after: FileState;
    }

    const probe = Buffer.alloc(1);
    /**
     * A file no larger than the smallest chunk is one chunk: read whole, with synchronous
     * calls (for small files a thread-pool round trip per call costs more than the read).
     * Its state before the read is the scan's (moments ago). Null if it grew past `size`.
     */
    const readSmall = async (f: ScanFile): Promise<Read | null> => {
      const fd = openSync(f.path, 'r');
      let data: Uint8Array;
      let after: FileState;
      try {
        data = f.size > 0 ? buffers.take(f.size) : new Uint8Array(0);
        let n = 0;
        for (let got = -1; n < f.size && got !== 0; n += got)
          got = readSync(fd, data, n, f.size - n, n);
        if (readSync(fd, probe, 0, 1, n) > 0) {
          if (f.size > 0) buffers.give(data);
          return null;
        }
        data = data.subarray(0, n);
        after = fileState(fstatSync(fd, { bigint: true }));
      } finally {
        closeSync(fd);
      }
      const chunks: Uint8Array[] = [];
      const n = data.byteLength;
      if (n > 0) {
        progress.bytesRead += n;
        await budget.take(n);
        chunks.push(await store(BlobType.data, data, n));
      }
      return { size: n, chunks, before: f, after };
    };

    /** Any file, chunk by chunk; its state before the read is taken when it is opened. */
    const readChunked = async (f: ScanFile): Promise<Read> => {
      const fh = await open(f.path, 'r');
      try {
        const before = fileState(await fh.stat({ bigint: true }));
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
          const n = chunk.data.byteLength;
          size += n;
          progress.bytesRead += n;
          await budget.take(n);
          pending.push(store(BlobType.data, chunk.data, n));
          opts.onProgress?.(progress);
        }
        const chunks = await Promise.all(pending);
        return { size, chunks, before, after: fileState(await fh.stat({ bigint: true })) };
      } finally {
        await fh.close();
      }
    };

    const readOnce = async (f: ScanFile, small: boolean) =>
      (small ? await readSmall(f) : null) ?? (await readChunked(f));

    /**
     * A file that changes while it is read (size, mtime or ctime differ at the end) would
     * be stored as a mix of old and new content: it is read again, once. If it changed
     * again, what was read is stored all the same, under the scan's times (so the next
     * backup reads it again), and the snapshot records the problem.
     */
    const backupFile = async (f: ScanFile): Promise<TreeNode | null> => {
      if (f.reuse) {
        progress.filesDone++;
        return fileNode(f, f.size, f.reuse);
      }
      try {
        let read = await readOnce(f, f.size <= minChunk);
        if (!sameState(read.before, read.after)) read = await readOnce(f, false);
        progress.filesDone++;
        opts.onProgress?.(progress);
        if (sameState(read.before, read.after))
          return fileNode({ ...f, ...read.after }, read.size, read.chunks);
        errors.push({
          path: f.path,
          message:
            'it kept changing while it was read (twice): stored as read, which may mix old and new content; the next backup reads it again',
        });
        return fileNode(f, read.size, read.chunks);
      } catch (e) {
        errors.push({ path: f.path, message: (e as Error).message });
        return null;
      }
    };

    // Files from all directories share two queues: many small files at once (they wait on
    // round trips), few large ones (each holds a chunking window of up to 16 MiB). So the
    // pipeline stays full however the files are spread over directories.
    const smallQueue = pLimit(64);
    const largeQueue = pLimit(3);
    // An unchanged file needs no work: it skips the queues.
    const queued = (f: ScanFile) =>
      f.reuse
        ? backupFile(f)
        : (f.size < 1024 * 1024 ? smallQueue : largeQueue)(() => backupFile(f));

    const backupDir = async (d: ScanDir): Promise<Uint8Array> => {
      const base = (c: ScanDir['children'][number]) => ({
        name: c.name,
        mode: c.mode,
        mtimeNs: c.mtimeNs,
        ctimeNs: c.ctimeNs,
        inode: c.inode,
        uid: c.uid,
        gid: c.gid,
      });
      // Subdirectories start at once (their files join the queues in walk order).
      const parts = d.children.map(async (c): Promise<TreeNode | null> => {
        if (c.kind === 'dir') return { ...base(c), kind: 'dir', subtree: await backupDir(c) };
        if (c.kind === 'symlink') return { ...base(c), kind: 'symlink', target: c.target };
        return queued(c);
      });
      const nodes = (await Promise.all(parts)).filter((n): n is TreeNode => n !== null);
      const encoded = encodeTree({ nodes: sortNodes(nodes) });
      // An unchanged directory encodes exactly as before: reuse its id, no round trip.
      if (d.parentTree) {
        const previous = await repo.loadTreeBytes(d.parentTree).catch(() => null);
        if (previous && bytesEqual(previous, encoded)) {
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
      // Unchanged directories keep their trees, unless the pack that held one was lost. Any
      // tree of the parent snapshot that is lost is stored again from this device's cache
      // (checked against its id), so that snapshot stays restorable.
      const trees = await repo.packsOf([...parentTrees]);
      for (const pack of trees.packs) packsUsed.add(pack);
      for (const hex of trees.missing) {
        const bytes = await repo.loadTreeBytes(fromHex(hex)).catch(() => null);
        if (bytes) await store(BlobType.tree, bytes.slice());
      }
      await settle();
      await packerStarted?.flush();
      await sp.drain();
    } finally {
      await packerStarted?.close();
    }
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
      files_resent: resent,
      duration_s: (Date.now() - started) / 1000,
      partial: errors.length > 0,
      errors,
    };
  } finally {
    session.close();
  }
}

/**
 * Unchanged files keep their chunk lists without being read, unless a chunk is no
 * longer in any available pack on the coordinator (a pack lost or damaged there): those
 * files are read again, so this backup stores their data anew. The packs holding the
 * chunks that are still there go into `packsUsed`. Returns how many files are re-read.
 */
async function rereadLost(
  root: ScanDir,
  totals: ScanTotals,
  repo: RemoteRepository,
  packsUsed: Set<string>,
): Promise<number> {
  const files: ScanFile[] = [];
  const walk = (d: ScanDir) => {
    for (const c of d.children)
      if (c.kind === 'dir') walk(c);
      else if (c.kind === 'file' && c.reuse) files.push(c);
  };
  walk(root);
  const { packs, missing } = await repo.packsOf([
    ...new Set(files.flatMap((f) => f.reuse!.map(toHex))),
  ]);
  for (const pack of packs) packsUsed.add(pack);
  let reread = 0;
  for (const f of files) {
    if (!f.reuse!.some((c) => missing.has(toHex(c)))) continue;
    f.reuse = null;
    totals.changedFiles++;
    totals.changedBytes += f.size;
    reread++;
  }
  return reread;
}

/** What tells that a file changed: its size and its modification and change times. */
interface FileState {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function fileState(st: BigIntStats): FileState {
  return { size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

function sameState(a: FileState, b: FileState): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}
