/** Worker thread body for `workerBlobPacker`: a PackBuilder driven by messages. */
import { parentPort, workerData } from 'node:worker_threads';
import { isKinvaultError } from '@kinvault/protocol';
import type { PackerRequest, PackerResponse, WorkerSetup } from './blob-packer.js';
import { copyInto } from './bytes.js';
import { Gather } from './gather.js';
import { WORKER_READY } from './worker-stop.js';
import { PackBuilder } from './pack-builder.js';

const setup = workerData as WorkerSetup;
const builder = new PackBuilder(setup.keys, setup.target);
const port = parentPort!;

/**
 * The open pack's bytes, assembled here in shared memory. A finished pack goes to the
 * caller's thread as a view of its SharedArrayBuffer: a transferred buffer would count
 * there as fresh external memory (a full garbage collection per 64 MiB), a shared one
 * does not. The caller sends the buffer back once its sink is done with the pack.
 */
class SharedPack {
  /** The open pack's buffer, as a Buffer view (its native copies avoid V8's slow path). */
  private view: Buffer | null = null;
  private size = 0;
  private readonly spare: SharedArrayBuffer[] = [];

  /** Room for a pack at its target plus its largest usual last chunk and header. */
  constructor(private readonly capacity: number) {}

  append(parts: readonly Uint8Array[]): void {
    let n = 0;
    for (const p of parts) n += p.byteLength;
    let view = (this.view ??= Buffer.from(
      this.spare.pop() ?? new SharedArrayBuffer(this.capacity),
    ));
    if (this.size + n > view.byteLength) {
      const bigger = Buffer.from(
        new SharedArrayBuffer(Math.max(view.byteLength * 2, this.size + n)),
      );
      copyInto(bigger, view.subarray(0, this.size), 0);
      this.view = view = bigger;
    }
    for (const p of parts) {
      copyInto(view, p, this.size);
      this.size += p.byteLength;
    }
  }

  /** The finished pack; the next `append` starts another. */
  take(): Uint8Array {
    const pack = new Uint8Array(this.view!.buffer, 0, this.size);
    this.view = null;
    this.size = 0;
    return pack;
  }

  /** Keeps a few buffers back from the caller (a sink may hold some until uploaded). */
  release(buffer: SharedArrayBuffer): void {
    if (this.spare.length < 4 && buffer.byteLength >= this.capacity) this.spare.push(buffer);
  }
}

const pack = new SharedPack(setup.target + 9 * 1024 * 1024);

/**
 * A finished pack (its sealed blobs already appended) with its tail, or nothing. The
 * entries' ids travel in the gather, not as one small buffer each.
 */
function finished(f: ReturnType<PackBuilder['flush']>, gather: Gather) {
  if (!f) return { pack: null, info: null };
  pack.append([f.tail]);
  const entries = f.info.entries.map((e) => ({
    type: e.type,
    id: e.id,
    offset: e.offset,
    length: e.length,
  }));
  for (const e of entries) gather.add([e.id], (v) => (e.id = v));
  return { pack: pack.take(), info: { ...f.info, entries } };
}

/** Answers one request (null: no reply); ids go into `gather`, filled in before posting. */
function answer(req: PackerRequest, gather: Gather): PackerResponse | null {
  try {
    switch (req.op) {
      case 'hash': {
        const reply = { seq: req.seq, id: builder.hash(req.seq, req.type, req.data) };
        gather.add([reply.id], (v) => (reply.id = v));
        return reply;
      }
      case 'seal': {
        const r = builder.seal(req.handle);
        pack.append(r.sealed);
        return { seq: req.seq, ...finished(r.finished, gather) };
      }
      case 'drop':
        builder.drop(req.handle);
        return null;
      case 'flush':
        return { seq: req.seq, ...finished(builder.flush(), gather) };
      case 'release':
        pack.release(req.buffer);
        return null;
    }
  } catch (error) {
    return {
      seq: req.seq,
      error: isKinvaultError(error)
        ? {
            code: error.code,
            message: error.message,
            retryable: error.retryable,
            details: error.details,
          }
        : { code: 'INTERNAL', message: String(error), retryable: false, details: {} },
    };
  }
}

// Requests come in batches (one message per event-loop turn of the caller); the replies
// go back as one batch, in order, with their ids in one buffer.
port.on('message', (batch: PackerRequest[]) => {
  const gather = new Gather();
  const replies: PackerResponse[] = [];
  for (const req of batch) {
    const reply = answer(req, gather);
    if (reply) replies.push(reply);
  }
  const gathered = gather.finish();
  if (replies.length > 0) port.postMessage(replies, gathered ? [gathered] : []);
});

// Every module is loaded (libsodium's top-level await included): safe to terminate.
port.postMessage(WORKER_READY);
