/** Worker thread body for `workerBlobPacker`: a PackBuilder driven by messages. */
import { parentPort, workerData } from 'node:worker_threads';
import { isKinvaultError } from '@kinvault/protocol';
import type { PackerRequest, PackerResponse, WorkerSetup } from './blob-packer.js';
import { Gather, SMALL } from './gather.js';
import { PackBuilder } from './pack-builder.js';

const setup = workerData as WorkerSetup;
const builder = new PackBuilder(setup.keys, setup.target);
const port = parentPort!;
/** Handles whose plaintext buffer goes back to the caller (it was lent by a pool). */
const giveBack = new Set<number>();

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

/** The plaintext's buffer, if the caller wants it back (and it may be transferred). */
function handBack(handle: number, data: Uint8Array | null, transfer: Set<ArrayBuffer>) {
  if (!giveBack.delete(handle) || !data || !(data.buffer instanceof ArrayBuffer)) return null;
  transfer.add(data.buffer);
  return data;
}

/**
 * Answers one request; adds what its reply may transfer to `transfer` and small byte
 * strings (ids, small sealed blobs) to `gather`, which fills them in before posting.
 */
function answer(req: PackerRequest, transfer: Set<ArrayBuffer>, gather: Gather): PackerResponse {
  try {
    switch (req.op) {
      case 'hash': {
        const reply = { seq: req.seq, id: builder.hash(req.seq, req.type, req.data) };
        if (req.back) giveBack.add(req.seq); // only once the blob is held
        gather.add([reply.id], (v) => (reply.id = v));
        return reply;
      }
      case 'seal': {
        const r = builder.seal(req.handle);
        const [tail] = r.finished ? movable([r.finished.tail], transfer) : [];
        let size = 0;
        for (const p of r.sealed) size += p.byteLength;
        const reply = {
          seq: req.seq,
          sealed: size <= SMALL ? r.sealed : movable(r.sealed, transfer),
          plaintext: handBack(req.handle, r.plaintext, transfer),
          finished: r.finished && tail ? { tail, info: r.finished.info } : null,
        };
        if (size <= SMALL) gather.add(r.sealed, (v) => (reply.sealed = [v]));
        return reply;
      }
      case 'drop':
        return { seq: req.seq, dropped: handBack(req.handle, builder.drop(req.handle), transfer) };
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
// go back as one batch, in order, with their small byte strings in one buffer.
port.on('message', (batch: PackerRequest[]) => {
  const transfer = new Set<ArrayBuffer>();
  const gather = new Gather();
  const replies = batch.map((req) => answer(req, transfer, gather));
  const gathered = gather.finish();
  if (gathered) transfer.add(gathered);
  port.postMessage(replies, [...transfer]);
});
