/** Worker thread body for `workerBlobPacker`: a PackBuilder driven by messages. */
import { parentPort, workerData } from 'node:worker_threads';
import { isKinvaultError } from '@kinvault/protocol';
import type { PackerRequest, PackerResponse, WorkerSetup } from './blob-packer.js';
import { PackBuilder } from './pack-builder.js';

const setup = workerData as WorkerSetup;
const builder = new PackBuilder(setup.keys, setup.target);
const port = parentPort!;

/**
 * Prepares parts for posting: large parts that own their buffer are transferred, small
 * ones copied into buffers of their own (so no shared Buffer pool travels with them).
 */
function movable(parts: Uint8Array[], transfer: Set<ArrayBuffer>): Uint8Array[] {
  return parts.map((p) => {
    const own =
      p.buffer instanceof ArrayBuffer && p.byteOffset === 0 && p.byteLength === p.buffer.byteLength;
    const out = own && p.byteLength > 4096 ? p : new Uint8Array(p);
    transfer.add(out.buffer as ArrayBuffer);
    return out;
  });
}

/** Answers one request; adds what its reply may transfer to `transfer`. */
function answer(req: PackerRequest, transfer: Set<ArrayBuffer>): PackerResponse {
  try {
    switch (req.op) {
      case 'hash':
        return { seq: req.seq, id: builder.hash(req.seq, req.type, req.data) };
      case 'seal': {
        const r = builder.seal(req.handle);
        const [tail] = r.finished ? movable([r.finished.tail], transfer) : [];
        // The plaintext's buffer goes back to the caller for reuse.
        if (r.plaintext.buffer instanceof ArrayBuffer) transfer.add(r.plaintext.buffer);
        return {
          seq: req.seq,
          sealed: movable(r.sealed, transfer),
          plaintext: r.plaintext,
          finished: r.finished && tail ? { tail, info: r.finished.info } : null,
        };
      }
      case 'drop': {
        const dropped = builder.drop(req.handle);
        if (dropped?.buffer instanceof ArrayBuffer) transfer.add(dropped.buffer);
        return { seq: req.seq, dropped };
      }
      case 'flush': {
        const finished = builder.flush();
        const [tail] = finished ? movable([finished.tail], transfer) : [];
        return { seq: req.seq, finished: finished && tail ? { tail, info: finished.info } : null };
      }
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
// go back as one batch, in order.
port.on('message', (batch: PackerRequest[]) => {
  const transfer = new Set<ArrayBuffer>();
  const replies = batch.map((req) => answer(req, transfer));
  port.postMessage(replies, [...transfer]);
});
