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

port.on('message', (req: PackerRequest) => {
  try {
    let reply: PackerResponse;
    const transfer = new Set<ArrayBuffer>();
    switch (req.op) {
      case 'hash':
        reply = { seq: req.seq, id: builder.hash(req.seq, req.type, req.data) };
        break;
      case 'seal': {
        const r = builder.seal(req.handle);
        const [tail] = r.finished ? movable([r.finished.tail], transfer) : [];
        reply = {
          seq: req.seq,
          sealed: movable(r.sealed, transfer),
          plaintext: r.plaintext,
          finished: r.finished && tail ? { tail, info: r.finished.info } : null,
        };
        // The plaintext's buffer goes back to the caller for reuse.
        if (r.plaintext.buffer instanceof ArrayBuffer) transfer.add(r.plaintext.buffer);
        break;
      }
      case 'drop': {
        const dropped = builder.drop(req.handle);
        reply = { seq: req.seq, dropped };
        if (dropped?.buffer instanceof ArrayBuffer) transfer.add(dropped.buffer);
        break;
      }
      case 'flush': {
        const finished = builder.flush();
        const [tail] = finished ? movable([finished.tail], transfer) : [];
        reply = { seq: req.seq, finished: finished && tail ? { tail, info: finished.info } : null };
        break;
      }
    }
    port.postMessage(reply, [...transfer]);
  } catch (error) {
    const reply: PackerResponse = {
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
    port.postMessage(reply);
  }
});
