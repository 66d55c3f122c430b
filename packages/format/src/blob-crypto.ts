/**
 * Hashing and sealing of blobs, on the calling thread or in a pool of worker threads.
 *
 * Contract: ids are identical to `blobId`; sealed blobs open with `openBlob` (their
 * nonces are random, so bytes differ between runs).
 * The pool takes ownership of the `data` buffers handed to it (they are transferred to
 * a worker, and come back in the result), so callers must not reuse them.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KinvaultError } from '@kinvault/protocol';
import { blobId, sealBlob, type BlobType } from './blob.js';
import type { RepositoryKeys } from './keys.js';

export type BlobKeys = Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>;

export interface BlobCrypto {
  /** The blob id of `data`; `data` is handed back (it may have travelled to a worker). */
  hash(type: BlobType, data: Uint8Array): Promise<{ id: Uint8Array; data: Uint8Array }>;
  /** Seals `data` under `id` (from `hash`). */
  seal(type: BlobType, id: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Same-thread implementation: for small jobs and as the reference. */
export function inlineBlobCrypto(keys: BlobKeys): BlobCrypto {
  return {
    hash: async (type, data) => ({ id: blobId(keys, type, data), data }),
    seal: async (type, id, data) => sealBlob(keys, type, id, data),
    close: async () => {},
  };
}

export type WorkerRequest =
  | { op: 'hash'; seq: number; type: BlobType; data: Uint8Array }
  | { op: 'seal'; seq: number; type: BlobType; id: Uint8Array; data: Uint8Array };

export type WorkerResponse =
  | { seq: number; id: Uint8Array; data: Uint8Array }
  | { seq: number; sealed: Uint8Array }
  | { seq: number; error: { code: string; message: string } };

interface Pending {
  resolve: (r: WorkerResponse) => void;
  reject: (e: Error) => void;
}

/** Owns its ArrayBuffer outright, so it can be transferred without touching other data. */
function transferable(data: Uint8Array): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)
    ? data
    : data.slice();
}

/**
 * The worker's entry. From compiled JavaScript it is the sibling .js file. From the
 * TypeScript sources (tests) a one-line bootstrap registers tsx first, with the
 * workspace's source condition, then imports the .ts worker.
 */
function spawnWorker(keys: BlobKeys): Worker {
  const workerData = { idKey: keys.idKey, dataKey: keys.dataKey, metadataKey: keys.metadataKey };
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./blob-crypto.worker.js', import.meta.url), { workerData });
  }
  const entry = new URL('./blob-crypto.worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, { eval: true, workerData, execArgv: ['--conditions=kinvault-source'] });
}

/** A pool of worker threads; requests go to the least busy worker. */
export function workerBlobCrypto(keys: BlobKeys, threads = Math.max(1, availableParallelism())): BlobCrypto {
  let seq = 0;
  let closed = false;
  let broken: KinvaultError | undefined;
  const workers = Array.from({ length: threads }, () => {
    const worker = spawnWorker(keys);
    const state = { worker, busy: 0, pending: new Map<number, Pending>() };
    worker.on('message', (r: WorkerResponse) => {
      const p = state.pending.get(r.seq);
      if (!p) return;
      state.pending.delete(r.seq);
      state.busy--;
      p.resolve(r);
    });
    // A worker that dies fails what it had in hand and breaks the pool: callers get
    // an error instead of waiting for an answer that will never come.
    const fail = (why: string, cause?: unknown) => {
      broken ??= new KinvaultError('INTERNAL', `A hashing/encryption worker thread stopped (${why}).`, { cause });
      for (const p of state.pending.values()) p.reject(broken);
      state.pending.clear();
    };
    worker.on('error', (error) => fail(error.message, error));
    worker.on('exit', (code) => fail(closed ? 'the pool was closed' : `exit code ${code}`));
    return state;
  });
  async function call(req: WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerResponse> {
    if (closed) throw new KinvaultError('INTERNAL', 'The blob crypto pool is closed.');
    if (broken) throw broken;
    let w = workers[0]!;
    for (const c of workers) if (c.busy < w.busy) w = c;
    const r = await new Promise<WorkerResponse>((resolve, reject) => {
      w.pending.set(req.seq, { resolve, reject });
      w.busy++;
      w.worker.postMessage(req, transfer);
    });
    if ('error' in r) throw new KinvaultError(r.error.code as never, r.error.message);
    return r;
  }

  return {
    async hash(type, data) {
      const d = transferable(data);
      const r = await call({ op: 'hash', seq: seq++, type, data: d }, [d.buffer as ArrayBuffer]);
      if (!('id' in r)) throw new KinvaultError('INTERNAL', 'Unexpected worker reply.');
      return { id: r.id, data: r.data };
    },
    async seal(type, id, data) {
      const d = transferable(data);
      const r = await call({ op: 'seal', seq: seq++, type, id, data: d }, [d.buffer as ArrayBuffer]);
      if (!('sealed' in r)) throw new KinvaultError('INTERNAL', 'Unexpected worker reply.');
      return r.sealed;
    },
    async close() {
      closed = true;
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
