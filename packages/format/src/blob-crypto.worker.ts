/** Worker thread body for `workerBlobCrypto`: hashes and seals blobs it is sent. */
import { parentPort, workerData } from 'node:worker_threads';
import { isKinvaultError } from '@kinvault/protocol';
import { blobId, sealBlob } from './blob.js';
import type { BlobKeys, WorkerRequest, WorkerResponse } from './blob-crypto.js';

const keys = workerData as BlobKeys;
const port = parentPort!;

port.on('message', (req: WorkerRequest) => {
  try {
    if (req.op === 'hash') {
      const id = blobId(keys, req.type, req.data);
      const reply: WorkerResponse = { seq: req.seq, id, data: req.data };
      port.postMessage(reply, [req.data.buffer as ArrayBuffer]);
    } else {
      const sealed = sealBlob(keys, req.type, req.id, req.data);
      const reply: WorkerResponse = { seq: req.seq, sealed };
      port.postMessage(reply, [sealed.buffer as ArrayBuffer]);
    }
  } catch (error) {
    const reply: WorkerResponse = {
      seq: req.seq,
      error: isKinvaultError(error)
        ? { code: error.code, message: error.message }
        : { code: 'INTERNAL', message: String(error) },
    };
    port.postMessage(reply);
  }
});
