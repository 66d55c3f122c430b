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
 *   with others are copied instead). A buffer lent by a BufferPool is passed to
 *   `recycle`, if given, once its blob is sealed or dropped.
 * - `seal` resolves once the sealed bytes are written to the sink and, if the blob
 *   completed its pack, the tail written and `close(info)` awaited; it then returns that
 *   pack's info. Uploads therefore apply backpressure. A blob is durable only once a
 *   returned PackInfo (from `seal` or `flush`) lists it: record stored ids from those,
 *   not from `seal` resolving.
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
import { PackBuilder, type BlobKeys, type FinishedPack } from './pack-builder.js';
import { BufferPool } from './bytes.js';
import { Gather, SMALL } from './gather.js';
import type { RandomSource } from './random.js';

/** Where one pack's bytes go (a file, a tus upload). */
export interface PackSink extends ByteSink {
  /** Writes several pieces in order (optional; otherwise `write` is called for each). */
  writev?(parts: readonly Uint8Array[]): void | Promise<void>;
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
  ) {}

  write(
    sealed: readonly Uint8Array[] | null,
    finished: FinishedPack | null,
  ): Promise<PackInfo | null> {
    const run = async (): Promise<PackInfo | null> => {
      if (this.failed !== undefined) throw this.failed;
      try {
        if (sealed) {
          const sink = (this.sink ??= await this.openSink());
          if (sink.writev) await sink.writev(sealed);
          else for (const part of sealed) await sink.write(part);
        }
        if (!finished) return null;
        const sink = this.sink;
        if (!sink) throw new KinvaultError('INTERNAL', 'A pack finished without an open sink.');
        await sink.write(finished.tail);
        this.sink = undefined;
        await sink.close(finished.info);
        return finished.info;
      } catch (error) {
        this.failed = error;
        this.onError(error);
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
  const out = new LaneOutput(openSink, (e) => breaker.fail(e));
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
      return out.write(r.sealed, r.finished);
    },
    drop(blob) {
      const data = builder.drop(blob.handle);
      if (data) options.recycle?.(data);
    },
    async flush() {
      breaker.check();
      const info = await out.write(null, builder.flush());
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
  /** `back`: hand the plaintext's buffer back once sealed or dropped (pool-lent data). */
  | { op: 'hash'; seq: number; type: BlobType; data: Uint8Array; back: boolean }
  | { op: 'seal'; seq: number; handle: number }
  | { op: 'drop'; seq: number; handle: number }
  | { op: 'flush'; seq: number };

export type PackerResponse =
  | { seq: number; id: Uint8Array }
  | {
      seq: number;
      sealed: Uint8Array[];
      plaintext: Uint8Array | null;
      finished: FinishedPack | null;
    }
  | { seq: number; finished: FinishedPack | null }
  | { seq: number; dropped: Uint8Array | null }
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
 * `data` itself when its whole ArrayBuffer may travel to a worker: the view owns all of
 * it, or it was lent by a BufferPool (one view per buffer). Anything else is copied,
 * so a buffer shared by several views is never detached under another holder.
 */
function transferable(data: Uint8Array): Uint8Array {
  const buffer = data.buffer;
  const whole = data.byteOffset === 0 && data.byteLength === buffer.byteLength;
  const movable = buffer instanceof ArrayBuffer && (whole || BufferPool.lent(buffer));
  return movable ? data : new Uint8Array(data);
}

interface Lane {
  worker: Worker;
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
  /** Handles whose data was lent by a BufferPool: their buffer comes back to recycle. */
  const lentHandles = new Set<number>();
  const lanes: Lane[] = Array.from(
    { length: Math.max(1, options.threads ?? availableParallelism()) },
    () => {
      const lane: Lane = {
        worker: spawnWorker(setup),
        out: new LaneOutput(openSink, (e) => breaker.fail(e)),
        pending: new Map(),
        outbox: [],
        transfer: [],
        gather: new Gather(),
      };
      lane.worker.on('message', (replies: PackerResponse[]) => {
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
      const lent = BufferPool.lent(data.buffer);
      if (lent) lentHandles.add(handle);
      // Small blobs travel copied into the lane's gather, larger ones are transferred.
      const small = !lent && size <= SMALL;
      const d = small ? data : transferable(data);
      const req: PackerRequest = { op: 'hash', seq: handle, type, data: d, back: lent };
      return call(
        lanes[lane]!,
        req,
        small ? [] : [d.buffer as ArrayBuffer],
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
        if (!('sealed' in r) || !('plaintext' in r)) {
          throw new KinvaultError('INTERNAL', 'Unexpected worker reply to seal.');
        }
        if (lentHandles.delete(blob.handle) && r.plaintext) {
          BufferPool.relend(r.plaintext.buffer);
          options.recycle?.(r.plaintext);
        }
        return lane.out.write(r.sealed, r.finished);
      });
    },
    drop(blob) {
      const lent = lentHandles.delete(blob.handle);
      if (breaker.error !== undefined || breaker.closed) return;
      const lane = lanes[blob.lane]!;
      const req: PackerRequest = { op: 'drop', seq: seq++, handle: blob.handle };
      // The worker hands the buffer back, so the pool stays warm on runs that find
      // most chunks already stored.
      lane.pending.set(req.seq, (r) => {
        if (lent && 'dropped' in r && r.dropped) {
          BufferPool.relend(r.dropped.buffer);
          options.recycle?.(r.dropped);
        }
      });
      post(lane, req);
    },
    async flush() {
      const infos = await Promise.all(
        lanes.map((lane) =>
          call(lane, { op: 'flush', seq: seq++ }, [], (r) => {
            if (!('finished' in r))
              throw new KinvaultError('INTERNAL', 'Unexpected worker reply to flush.');
            return lane.out.write(null, r.finished);
          }),
        ),
      );
      return infos.filter((i): i is PackInfo => i !== null);
    },
    async close() {
      breaker.closed = true;
      await Promise.all(lanes.map((l) => l.worker.terminate()));
      await Promise.all(lanes.map((l) => l.out.abort().catch(() => {})));
    },
  };
}
