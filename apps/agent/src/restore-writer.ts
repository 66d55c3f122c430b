/**
 * Restore writers: worker threads that open blobs from raw pack ranges and write them
 * into files (see restore-writer.worker.ts). A request names the ranges it brings and
 * the file pieces to write from them; files with `finish` are completed (size checked,
 * mode and mtime set, renamed into place) by the same request. A request resolves with
 * what was written and what was not (bad blobs, a full disk); it rejects only when a
 * worker thread stops.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KinvaultError } from '@kinvault/protocol';
import { BufferPool, stopper, type RepositoryKeys } from '@kinvault/format';
import type { RawRange } from './repository.js';

export interface FilePiece {
  /**
   * The file the pieces go into: a temporary one, renamed to `finish.path` when
   * complete, or `finish.path` itself when nothing was there (created exclusively).
   */
  tmp: string;
  /** Create it (exclusive) rather than open an existing one. */
  create: boolean;
  /** Where the first chunk goes. */
  position: number;
  /** Chunk ids (hex), in file order; each must be among the request's ranges. */
  chunks: string[];
  /** `mtime` is a `utimeArg` (seconds as a decimal string). */
  finish?: { path: string; size: number; mode: number; mtime: string };
}

export interface WriteRequest {
  seq: number;
  ranges: RawRange[];
  files: FilePiece[];
}

export interface WriteResult {
  /** Bytes written (of the file pieces that were). */
  written: number;
  /** Blobs that failed to open (AEAD or id check), with the error code. */
  bad: { hex: string; code: string }[];
  /** Indexes of the pieces not written because a blob they need is bad. */
  skipped: number[];
  /**
   * Writing stopped at `files[done]` (its file removed; later pieces not tried): pieces
   * before it not in `skipped` were written. `errno` is the system's code (ENOSPC, …).
   */
  error?: { code: string; errno?: string; message: string; done: number };
}

export type WriteReply = { seq: number } & WriteResult;

function spawn(keys: Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./restore-writer.worker.js', import.meta.url), { workerData: keys });
  const entry = new URL('./restore-writer.worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, {
    eval: true,
    workerData: keys,
    execArgv: ['--conditions=kinvault-source'],
  });
}

/**
 * `recycle` receives each range buffer that was lent by a BufferPool (shared memory,
 * shown to the worker, not moved) once the worker is done with it.
 */
export function restoreWriters(
  keys: RepositoryKeys,
  recycle?: (bytes: Uint8Array) => void,
  threads = availableParallelism(),
) {
  const setup = { idKey: keys.idKey, dataKey: keys.dataKey, metadataKey: keys.metadataKey };
  let seq = 0;
  const lanes = Array.from({ length: Math.max(1, threads) }, () => {
    const pending = new Map<
      number,
      { resolve: (r: WriteResult) => void; reject: (e: unknown) => void; lent: Uint8Array[] }
    >();
    const worker = spawn(setup);
    const stop = stopper(worker);
    const failAll = (why: string) => {
      for (const p of pending.values())
        p.reject(
          new KinvaultError(
            'INTERNAL',
            `A restore worker thread stopped (${why}). Run the restore again: files already written are kept.`,
          ),
        );
      pending.clear();
    };
    worker.on('message', (r: WriteReply | string) => {
      if (typeof r === 'string') return; // WORKER_READY
      const p = pending.get(r.seq);
      pending.delete(r.seq);
      if (!p) return;
      for (const bytes of p.lent) recycle?.(bytes);
      p.resolve(r);
    });
    worker.on('error', (e) => failAll(e.message));
    const exited = (code: number) => failAll(`exit code ${code}`);
    worker.on('exit', exited);
    return { worker, pending, stop, exited };
  });

  return {
    /**
     * Writes the pieces (see WriteResult). Ranges in pool-lent (shared) buffers are
     * recycled once written; other range buffers move to the worker.
     */
    write(ranges: RawRange[], files: FilePiece[]): Promise<WriteResult> {
      let lane = lanes[0]!;
      for (const l of lanes) if (l.pending.size < lane.pending.size) lane = l;
      const req: WriteRequest = { seq: seq++, ranges, files };
      return new Promise<WriteResult>((resolve, reject) => {
        const lent = [
          ...new Map(
            ranges
              .filter((r) => BufferPool.lent(r.bytes.buffer))
              .map((r) => [r.bytes.buffer, r.bytes]),
          ).values(),
        ];
        lane.pending.set(req.seq, { resolve, reject, lent });
        const transfer = [
          ...new Set(
            ranges
              .map((r) => r.bytes.buffer)
              .filter((b): b is ArrayBuffer => b instanceof ArrayBuffer),
          ),
        ];
        lane.worker.postMessage(req, transfer);
      });
    },
    async close(): Promise<void> {
      for (const l of lanes) l.worker.off('exit', l.exited);
      await Promise.all(lanes.map((l) => l.stop()));
    },
  };
}
