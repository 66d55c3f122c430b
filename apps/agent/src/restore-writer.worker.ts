/**
 * Worker thread body for the restore writer: opens (decrypts and verifies) blobs from
 * ranges read off packs and writes them into files, with synchronous calls. Doing this
 * off the main thread lets downloading, decrypting and writing overlap.
 *
 * Each blob is opened on its own: one that fails its check is reported in `bad`, and the
 * pieces that need it are left out (`skipped`); the others are written. A failure to
 * write (a full disk) stops the request at that piece, whose file is removed.
 */
import {
  closeSync,
  fchmodSync,
  ftruncateSync,
  futimesSync,
  openSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BlobType, openBlob, WORKER_READY, type RepositoryKeys } from '@kinvault/format';
import { isKinvaultError } from '@kinvault/protocol';
import { writeSparseSync } from './fs-write.js';
import type { FilePiece, WriteReply, WriteRequest } from './restore-writer.js';

const keys = workerData as Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>;
const port = parentPort!;

const failure = (e: unknown, kinvaultCode?: string) =>
  Object.assign(e instanceof Error ? e : new Error(String(e)), { kinvaultCode });

/** Writes one piece (and finishes its file when it is the last); returns the bytes written. */
function writePiece(f: FilePiece, plain: Map<string, Uint8Array>): number {
  const fd = openSync(f.tmp, f.create ? 'wx' : 'r+', 0o600);
  let at = f.position;
  try {
    let end = at;
    for (const hex of f.chunks) {
      const data = plain.get(hex)!;
      end = Math.max(end, writeSparseSync(fd, data, at));
      at += data.byteLength;
    }
    if (f.finish) {
      if (at !== f.finish.size)
        throw failure(
          new Error(
            `${f.finish.path}: the snapshot says ${f.finish.size} bytes but its chunks hold ${at}.`,
          ),
          'PACK_CORRUPT',
        );
      // Zeros at the end were not written: the size makes them a hole.
      if (end < at) ftruncateSync(fd, at);
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
        throw failure(
          new Error(`Refusing to replace the directory ${f.finish.path} with a file.`),
          'INVALID_ARGUMENT',
        );
      throw e;
    }
  }
  return at - f.position;
}

function run(req: WriteRequest): WriteReply {
  const plain = new Map<string, Uint8Array>();
  const bad: WriteReply['bad'] = [];
  for (const r of req.ranges)
    for (const b of r.blobs) {
      try {
        plain.set(
          b.hex,
          openBlob(keys, BlobType.data, b.id, r.bytes.subarray(b.at, b.at + b.length)),
        );
      } catch (e) {
        bad.push({ hex: b.hex, code: isKinvaultError(e) ? e.code : 'INTERNAL' });
      }
    }
  const reply: WriteReply = { seq: req.seq, written: 0, bad, skipped: [] };
  for (const [i, f] of req.files.entries()) {
    if (!f.chunks.every((hex) => plain.has(hex))) {
      reply.skipped.push(i);
      continue;
    }
    try {
      reply.written += writePiece(f, plain);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { kinvaultCode?: string };
      reply.error = isKinvaultError(e)
        ? { code: e.code, message: e.message, done: i }
        : {
            code: err.kinvaultCode ?? 'INTERNAL',
            ...(typeof err.code === 'string' && { errno: err.code }),
            message: err.message,
            done: i,
          };
      break;
    }
  }
  return reply;
}

port.on('message', (req: WriteRequest) => {
  // Once this is posted the range buffers are the caller's again (pooled ones are shared
  // memory, never moved here).
  port.postMessage(run(req));
});

// Every module is loaded (libsodium's top-level await included): safe to terminate.
port.postMessage(WORKER_READY);
