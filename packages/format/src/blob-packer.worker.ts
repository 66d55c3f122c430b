/** Worker thread body for `workerBlobPacker`: a PackBuilder driven by messages. */
import { parentPort, workerData } from 'node:worker_threads';
import { isKinvaultError } from '@kinvault/protocol';
import type { PackerRequest, PackerResponse, WorkerSetup } from './blob-packer.js';
import { PackBuilder, type FinishedPack } from './pack-builder.js';

const setup = workerData as WorkerSetup;
const builder = new PackBuilder(setup.keys, setup.target);
const port = parentPort!;

function transfers(...parts: (Uint8Array | undefined)[]): ArrayBuffer[] {
  return parts.filter((p): p is Uint8Array => p !== undefined).map((p) => p.buffer as ArrayBuffer);
}

function finishedTransfer(f: FinishedPack | null): Uint8Array | undefined {
  return f?.tail;
}

port.on('message', (req: PackerRequest) => {
  try {
    let reply: PackerResponse;
    let transfer: ArrayBuffer[] = [];
    switch (req.op) {
      case 'hash':
        reply = { seq: req.seq, id: builder.hash(req.seq, req.type, req.data) };
        break;
      case 'seal': {
        const r = builder.seal(req.handle);
        reply = { seq: req.seq, sealed: r.sealed, finished: r.finished };
        transfer = transfers(r.sealed, finishedTransfer(r.finished));
        break;
      }
      case 'drop':
        builder.drop(req.handle);
        return;
      case 'flush': {
        const finished = builder.flush();
        reply = { seq: req.seq, finished };
        transfer = transfers(finishedTransfer(finished));
        break;
      }
    }
    port.postMessage(reply, transfer);
  } catch (error) {
    const reply: PackerResponse = {
      seq: req.seq,
      error: isKinvaultError(error)
        ? { code: error.code, message: error.message }
        : { code: 'INTERNAL', message: String(error) },
    };
    port.postMessage(reply);
  }
});
