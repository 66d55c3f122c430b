/**
 * Worker thread body for the restore writer: opens (decrypts and verifies) blobs from
 * ranges read off packs and writes them into files, with synchronous calls. Doing this
 * off the main thread lets downloading, decrypting and writing overlap.
 */
import {
  closeSync,
  fchmodSync,
  futimesSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BlobType, openBlob, WORKER_READY, type RepositoryKeys } from '@kinvault/format';
import { isKinvaultError } from '@kinvault/protocol';
import type { WriteReply, WriteRequest } from './restore-writer.js';

const keys = workerData as Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>;
const port = parentPort!;

function run(req: WriteRequest): number {
  const plain = new Map<string, Uint8Array>();
  for (const r of req.ranges)
    for (const b of r.blobs)
      plain.set(
        b.hex,
        openBlob(keys, BlobType.data, b.id, r.bytes.subarray(b.at, b.at + b.length)),
      );
  let total = 0;
  for (const f of req.files) {
    const fd = openSync(f.tmp, f.create ? 'wx' : 'r+', 0o600);
    let at = f.position;
    try {
      for (const hex of f.chunks) {
        const data = plain.get(hex);
        if (!data) throw new Error(`chunk ${hex} was not read`);
        for (let done = 0; done < data.byteLength;) {
          const n = writeSync(fd, data, done, data.byteLength - done, at + done);
          if (n <= 0) throw new Error(`${f.tmp}: the disk accepted no bytes (is it full?)`);
          done += n;
        }
        at += data.byteLength;
      }
      total += at - f.position;
      if (f.finish) {
        if (at !== f.finish.size)
          throw Object.assign(
            new Error(
              `${f.finish.path}: the snapshot says ${f.finish.size} bytes but its chunks hold ${at}.`,
            ),
            { kinvaultCode: 'PACK_CORRUPT' },
          );
        fchmodSync(fd, f.finish.mode);
        futimesSync(fd, f.finish.mtime, f.finish.mtime);
      }
    } catch (e) {
      closeSync(fd);
      rmSync(f.tmp, { force: true });
      throw e;
    }
    closeSync(fd);
    if (f.finish && f.finish.path !== f.tmp) {
      try {
        renameSync(f.tmp, f.finish.path);
      } catch (e) {
        rmSync(f.tmp, { force: true });
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
          throw Object.assign(
            new Error(`Refusing to replace the directory ${f.finish.path} with a file.`),
            { kinvaultCode: 'INVALID_ARGUMENT' },
          );
        throw e;
      }
    }
  }
  return total;
}

port.on('message', (req: WriteRequest) => {
  let reply: WriteReply;
  try {
    reply = { seq: req.seq, written: run(req) };
  } catch (e) {
    const code = isKinvaultError(e)
      ? e.code
      : ((e as { kinvaultCode?: string }).kinvaultCode ?? 'INTERNAL');
    reply = { seq: req.seq, error: { code, message: (e as Error).message } };
  }
  // Once this is posted the range buffers are the caller's again (pooled ones are shared
  // memory, never moved here).
  port.postMessage(reply);
});

// Every module is loaded (libsodium's top-level await included): safe to terminate.
port.postMessage(WORKER_READY);
