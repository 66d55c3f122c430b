/**
 * Turns blobs into packs: hash (for the dedup decision), then seal or drop, with the
 * heavy work (HMAC, encryption, pack SHA-256) inline or in worker threads.
 *
 * Each lane (the inline builder, or one worker) keeps its own open pack and writes it
 * to a sink from `openSink`; a blob is sealed into the pack of the lane that hashed it.
 *
 * Contract:
 * - `hash` takes ownership of `data` and of its whole ArrayBuffer, which may be
 *   transferred to a worker (small blobs, up to 64 KiB, and views of a buffer shared
 *   with others are copied instead). A buffer lent by a BufferPool (shared memory) is
 *   shown to the worker, not moved, and passed to `recycle`, if given, once its blob
 *   is sealed or dropped.
 * - `seal` resolves once the blob is in its lane's open pack and every earlier write
 *   and close of that lane is done; if the blob completed its pack, once the pack is
 *   written and `close(info)` awaited, and it then returns that pack's info. Uploads
 *   therefore apply backpressure. A blob is durable only once a returned PackInfo
 *   (from `seal` or `flush`) lists it: record stored ids from those, not from `seal`
 *   resolving.
 * - The inline packer writes each sealed blob to the sink as it is sealed; the worker
 *   packer assembles a pack in the worker and writes it whole when it is complete.
 * - Each held blob must be sealed or dropped once.
 * - After any failure (a sink write or open, a worker, a refused seal) the packer is
 *   broken: the open packs are aborted, never closed, and every later call rejects.
 *   Packs closed before the failure are complete and valid.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { KinvaultError, type ErrorCode } from '@kinvault/protocol';
import type { BlobType } from './blob.js';
import { DEFAULT_PACK_TARGET, type ByteSink, type PackInfo } from './pack.js';
import { PackBuilder, type BlobKeys } from './pack-builder.js';
import { BufferPool } from './bytes.js';
import { Gather, SMALL } from './gather.js';
import { stopper } from './worker-stop.js';
import type { RandomSource } from './random.js';

/**
 * Where one pack's bytes go (a file, a tus upload). The bytes given to `write` and
 * `writev` may be reused once the returned promise settles: copy what you keep.
 */
export interface PackSink extends ByteSink {
  /** Writes several pieces in order (optional; otherwise `write` is called for each). */
  writev?(parts: readonly Uint8Array[]): void | Promise<void>;
  /**
   * Takes a complete pack's bytes instead of `write` (optional), without copying them:
   * the sink calls `release` once nothing reads them any more, or never (then they are
   * not reused). Called at most once per sink, before `close`.
   */
  adopt?(pack: Uint8Array, release: () => void): void | Promise<void>;
  /** The pack is complete and named: store it (rename into place, finish the upload). */
  close(info: PackInfo): Promise<void>;
  /** The pack is abandoned (the packer failed or closed before finishing it). */
  abort?(): Promise<void>;
}

export interface HeldBlob {
  readonly id: Uint8Array;
  readonly type: BlobType;
  /** Plaintext length. */
  readonly size: number;
  readonly lane: number;
  readonly handle: number;
}

export interface BlobPacker {
  hash(type: BlobType, data: Uint8Array): Promise<HeldBlob>;
  seal(blob: HeldBlob): Promise<PackInfo | null>;
  drop(blob: HeldBlob): void;
  /** Finishes every open pack; returns their infos. */
  flush(): Promise<PackInfo[]>;
  close(): Promise<void>;
}

export interface BlobPackerOptions {
  /** Pack size at which a pack is finished (default 16 MiB). */
  target?: number;
  /** Worker threads (worker packer only; default: CPU count). */
  threads?: number;
  /** Nonces (inline packer only; tests and vectors). */
  random?: RandomSource;
  /** Receives each plaintext buffer once its blob is sealed (e.g. `BufferPool.give`). */
  recycle?: (plaintext: Uint8Array) => void;
}

export type OpenPackSink = () => PackSink | Promise<PackSink>;

/**
 * Writes one lane's packs, in order, to sinks it opens as needed. After any failure
 * the lane is dead: its open sink is aborted (never closed), and every later write
 * rejects, so no pack with a missing or misplaced blob is ever stored.
 */
class LaneOutput {
  private sink: PackSink | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private failed: unknown;

  constructor(
    private readonly openSink: OpenPackSink,
    private readonly onError: (e: unknown) => void,
    /** The packer's failure, if any (another lane's counts too). */
    private readonly broken: () => unknown,
  ) {}

  /**
   * Writes `parts` (sealed blobs, or a pack's tail) to the open sink, opening one if
   * needed; with `info` the pack is complete and the sink is closed. With `release`,
   * `parts` is one whole pack, which a sink may adopt; otherwise `release` runs once
   * the sink has copied it (or the write failed).
   */
  write(
    parts: readonly Uint8Array[],
    info: PackInfo | null,
    release?: () => void,
  ): Promise<PackInfo | null> {
    const run = async (): Promise<PackInfo | null> => {
      try {
        const failure = this.failed ?? this.broken();
        if (failure !== undefined) throw failure;
        if (parts.length > 0) {
          const sink = (this.sink ??= await this.openSink());
          if (release && sink.adopt) {
            const adopted = release;
            release = undefined;
            await sink.adopt(parts[0]!, adopted);
          } else if (sink.writev) await sink.writev(parts);
          else for (const part of parts) await sink.write(part);
        }
        release?.();
        release = undefined;
        if (!info) return null;
        const sink = this.sink;
        if (!sink) throw new KinvaultError('INTERNAL', 'A pack finished without an open sink.');
        const failed = this.broken();
        if (failed !== undefined) throw failed;
        this.sink = undefined;
        await sink.close(info);
        return info;
      } catch (error) {
        release?.();
        if (this.failed === undefined) {
          this.failed = error;
          this.onError(error);
        }
        const sink = this.sink;
        this.sink = undefined;
        await sink?.abort?.().catch(() => {});
        throw error;
      }
    };
    const p = this.chain.then(run);
    this.chain = p.catch(() => {});
    return p;
  }

  async abort(): Promise<void> {
    await this.chain;
    const sink = this.sink;
    this.sink = undefined;
    await sink?.abort?.();
  }
}

/** Shared bookkeeping: the first failure breaks the packer. */
class Breaker {
  error: unknown;
  closed = false;
  check(): void {
    if (this.closed) throw new KinvaultError('INTERNAL', 'The blob packer is closed.');
    if (this.error !== undefined) throw this.error;
  }
  fail(e: unknown): void {
    this.error ??= e;
  }
}

/** Hashing and sealing on the calling thread. */
export function inlineBlobPacker(
  keys: BlobKeys,
  openSink: OpenPackSink,
  options: BlobPackerOptions = {},
): BlobPacker {
  const breaker = new Breaker();
  const builder = new PackBuilder(keys, options.target ?? DEFAULT_PACK_TARGET, options.random);
  const out = new LaneOutput(
    openSink,
    (e) => breaker.fail(e),
    () => breaker.error,
  );
  let handles = 0;
  return {
    async hash(type, data) {
      breaker.check();
      const handle = handles++;
      return { id: builder.hash(handle, type, data), type, size: data.byteLength, lane: 0, handle };
    },
    async seal(blob) {
      breaker.check();
      const r = builder.seal(blob.handle);
      options.recycle?.(r.plaintext);
      const f = r.finished;
      return out.write(f ? [...r.sealed, f.tail] : r.sealed, f?.info ?? null);
    },
    drop(blob) {
      const data = builder.drop(blob.handle);
      if (data) options.recycle?.(data);
    },
    async flush() {
      breaker.check();
      const f = builder.flush();
      const info = await out.write(f ? [f.tail] : [], f?.info ?? null);
      return info ? [info] : [];
    },
    async close() {
      breaker.closed = true;
      await out.abort();
    },
  };
}

export interface WorkerSetup {
  keys: BlobKeys;
  target: number;
}

export type PackerRequest =
  | { op: 'hash'; seq: number; type: BlobType; data: Uint8Array }
  | { op: 'seal'; seq: number; handle: number }
  /** No reply. */
  | { op: 'drop'; seq: number; handle: number }
  | { op: 'flush'; seq: number }
  /** A finished pack's buffer, back from the caller's thread for reuse. No reply. */
  | { op: 'release'; seq: number; buffer: SharedArrayBuffer };

export type PackerResponse =
  | { seq: number; id: Uint8Array }
  /** To `seal` and `flush`: the pack completed, if any, as a view of shared memory. */
  | { seq: number; pack: Uint8Array | null; info: PackInfo | null }
  | {
      seq: number;
      error: {
        code: string;
        message: string;
        retryable: boolean;
        details: Record<string, unknown>;
      };
    };

/**
 * The worker's entry. From compiled JavaScript it is the sibling .js file. From the
 * TypeScript sources (tests) a one-line bootstrap registers tsx first, with the
 * workspace's source condition, then imports the .ts worker.
 */
function spawnWorker(setup: WorkerSetup): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./blob-packer.worker.js', import.meta.url), { workerData: setup });
  }
  const entry = new URL('./blob-packer.worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, {
    eval: true,
    workerData: setup,
    execArgv: ['--conditions=kinvault-source'],
  });
}

/**
 * `data` itself when its whole ArrayBuffer may travel to a worker (the view owns all
 * of it); anything else is copied, so a buffer shared by several views is never
 * detached under another holder.
 */
function transferable(data: Uint8Array): Uint8Array {
  const buffer = data.buffer;
  const whole = data.byteOffset === 0 && data.byteLength === buffer.byteLength;
  return buffer instanceof ArrayBuffer && whole ? data : new Uint8Array(data);
}

interface Lane {
  worker: Worker;
  stop: () => Promise<void>;
  out: LaneOutput;
  pending: Map<number, (r: PackerResponse) => void>;
  /** Requests not yet posted: they go as one message at the end of this loop turn. */
  outbox: PackerRequest[];
  transfer: ArrayBuffer[];
  /** Small blobs of the outbox, copied into one buffer when it is posted. */
  gather: Gather;
}

/** Queues a request; the lane's outbox is posted once per event-loop turn. */
function post(lane: Lane, req: PackerRequest, transfer: readonly ArrayBuffer[] = []): void {
  if (lane.outbox.length === 0) {
    setImmediate(() => {
      const batch = lane.outbox;
      const moved = lane.transfer;
      const gathered = lane.gather.finish();
      if (gathered) moved.push(gathered);
      lane.outbox = [];
      lane.transfer = [];
      lane.worker.postMessage(batch, moved);
    });
  }
  lane.outbox.push(req);
  lane.transfer.push(...transfer);
}

/** Hashing, sealing and pack hashing in worker threads; the caller's thread only writes. */
export function workerBlobPacker(
  keys: BlobKeys,
  openSink: OpenPackSink,
  options: BlobPackerOptions = {},
): BlobPacker {
  const breaker = new Breaker();
  const setup: WorkerSetup = {
    keys: { idKey: keys.idKey, dataKey: keys.dataKey, metadataKey: keys.metadataKey },
    target: options.target ?? DEFAULT_PACK_TARGET,
  };
  let seq = 0;
  /** Data lent by a BufferPool, by handle: recycled once the worker is done with it. */
  const lentData = new Map<number, Uint8Array>();
  /** Once the sink is done with a finished pack, its buffer goes back to the worker. */
  const writePack = (lane: Lane, pack: Uint8Array | null, info: PackInfo | null) =>
    lane.out.write(pack ? [pack] : [], info, () => {
      if (pack?.buffer instanceof SharedArrayBuffer && !breaker.closed)
        post(lane, { op: 'release', seq: seq++, buffer: pack.buffer });
    });
  const lanes: Lane[] = Array.from(
    { length: Math.max(1, options.threads ?? availableParallelism()) },
    () => {
      const worker = spawnWorker(setup);
      const lane: Lane = {
        worker,
        stop: stopper(worker),
        out: new LaneOutput(
          openSink,
          (e) => breaker.fail(e),
          () => breaker.error,
        ),
        pending: new Map(),
        outbox: [],
        transfer: [],
        gather: new Gather(),
      };
      lane.worker.on('message', (replies: PackerResponse[] | string) => {
        if (!Array.isArray(replies)) return; // WORKER_READY
        for (const r of replies) {
          const handler = lane.pending.get(r.seq);
          lane.pending.delete(r.seq);
          handler?.(r);
        }
      });
      // A worker that stops fails what it had in hand and breaks the packer, so no
      // caller waits for an answer that will never come.
      const stopped = (why: string, cause?: unknown) => {
        breaker.fail(
          new KinvaultError(
            'INTERNAL',
            `A pack-building worker thread stopped (${why}); nothing half-written was stored. Run the command again; if it recurs, the machine may be short of memory.`,
            {
              cause,
            },
          ),
        );
        for (const handler of lane.pending.values()) {
          handler({
            seq: -1,
            error: { code: 'INTERNAL', message: String(why), retryable: false, details: {} },
          });
        }
        lane.pending.clear();
      };
      lane.worker.on('error', (e) => stopped(e.message, e));
      lane.worker.on('exit', (code) =>
        stopped(breaker.closed ? 'the packer was closed' : `exit code ${code}`),
      );
      return lane;
    },
  );

  /**
   * Sends a request; `onReply` runs inside the message event, so each lane's replies
   * reach its LaneOutput in the order the worker produced them.
   */
  function call<T>(
    lane: Lane,
    req: PackerRequest,
    transfer: ArrayBuffer[],
    onReply: (r: PackerResponse) => T,
    gather?: () => void,
  ): Promise<Awaited<T>> {
    return new Promise<Awaited<T>>((resolve, reject) => {
      breaker.check();
      gather?.();
      lane.pending.set(req.seq, (r) => {
        if (breaker.closed) {
          reject(new KinvaultError('INTERNAL', 'The blob packer was closed.'));
          return;
        }
        if ('error' in r) {
          const e = new KinvaultError(r.error.code as ErrorCode, r.error.message, {
            retryable: r.error.retryable,
            details: r.error.details,
          });
          // A refused seal or flush may leave the worker's pack ahead of its sink.
          if (req.op === 'seal' || req.op === 'flush') breaker.fail(e);
          reject(breaker.error ?? e);
          return;
        }
        Promise.resolve(onReply(r)).then(resolve, reject);
      });
      post(lane, req, transfer);
    });
  }

  return {
    hash(type, data) {
      let lane = 0;
      for (let i = 1; i < lanes.length; i++)
        if (lanes[i]!.pending.size < lanes[lane]!.pending.size) lane = i;
      const size = data.byteLength;
      const handle = seq++;
      // Pool-lent data is shared with the worker; other small blobs travel copied into
      // the lane's gather, larger ones are transferred.
      const lent = BufferPool.lent(data.buffer);
      if (lent) lentData.set(handle, data);
      const small = !lent && size <= SMALL;
      const d = lent || small ? data : transferable(data);
      const req: PackerRequest = { op: 'hash', seq: handle, type, data: d };
      return call(
        lanes[lane]!,
        req,
        lent || small ? [] : [d.buffer as ArrayBuffer],
        (r) => {
          if (!('id' in r)) throw new KinvaultError('INTERNAL', 'Unexpected worker reply to hash.');
          return { id: r.id, type, size, lane, handle };
        },
        small ? () => lanes[lane]!.gather.add([data], (v) => (req.data = v)) : undefined,
      );
    },
    seal(blob) {
      const lane = lanes[blob.lane]!;
      return call(lane, { op: 'seal', seq: seq++, handle: blob.handle }, [], (r) => {
        if (!('info' in r)) throw new KinvaultError('INTERNAL', 'Unexpected worker reply to seal.');
        // The worker has encrypted the blob: its plaintext buffer is free.
        const data = lentData.get(blob.handle);
        lentData.delete(blob.handle);
        if (data) options.recycle?.(data);
        return writePack(lane, r.pack, r.info);
      });
    },
    drop(blob) {
      // The worker read the data only to hash it, and that is done.
      const data = lentData.get(blob.handle);
      lentData.delete(blob.handle);
      if (data) options.recycle?.(data);
      if (breaker.error !== undefined || breaker.closed) return;
      post(lanes[blob.lane]!, { op: 'drop', seq: seq++, handle: blob.handle });
    },
    async flush() {
      const infos = await Promise.all(
        lanes.map((lane) =>
          call(lane, { op: 'flush', seq: seq++ }, [], (r) => {
            if (!('info' in r))
              throw new KinvaultError('INTERNAL', 'Unexpected worker reply to flush.');
            return writePack(lane, r.pack, r.info);
          }),
        ),
      );
      return infos.filter((i): i is PackInfo => i !== null);
    },
    async close() {
      breaker.closed = true;
      lentData.clear();
      await Promise.all(lanes.map((l) => l.stop()));
      await Promise.all(lanes.map((l) => l.out.abort().catch(() => {})));
    },
  };
}
