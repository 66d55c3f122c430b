/** Writes that never accept a short write silently. */
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Writes all parts in order: one writev, then a loop over whatever a short write left. */
export async function writeAll(fh: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  let done = (await fh.writev(parts as Uint8Array[])).bytesWritten;
  if (done === total) return;
  for (const part of parts) {
    if (done >= part.byteLength) {
      done -= part.byteLength;
      continue;
    }
    let at = done;
    done = 0;
    while (at < part.byteLength) {
      const { bytesWritten } = await fh.write(part, at, part.byteLength - at);
      if (bytesWritten <= 0) throw new Error('the disk accepted no bytes (is it full?)');
      at += bytesWritten;
    }
  }
}

/** Writes `length` bytes of `data` from `offset` at file `position`, however many calls it takes. */
export function writeAllSync(
  fd: number,
  data: Uint8Array,
  offset: number,
  length: number,
  position: number,
): void {
  for (let done = 0; done < length;) {
    const n = writeSync(fd, data, offset + done, length - done, position + done);
    if (n <= 0) throw new Error('the disk accepted no bytes (is it full?)');
    done += n;
  }
}

/** Blocks of this size (aligned to the file) that hold only zeros are not written. */
export const HOLE_BLOCK = 64 * 1024;
const ZEROS = new Uint8Array(HOLE_BLOCK);

/**
 * Writes `data` at `position` into a file this process created empty, leaving out every
 * block of HOLE_BLOCK bytes (aligned to the file's start) that is all zeros: unwritten
 * bytes of a fresh file read as zeros, and the filesystem keeps them as holes, so a
 * sparse file comes back sparse. Returns the end of the last byte written (`position`
 * when nothing was): the caller extends the file to its size when zeros ended it.
 * Random data costs one comparison per block, which stops at its first byte.
 */
export function writeSparseSync(fd: number, data: Uint8Array, position: number): number {
  const end = position + data.byteLength;
  let run = -1; // file offset where the pending run of data blocks starts
  let last = position;
  for (let at = position; at < end;) {
    const next = Math.min(end, (Math.floor(at / HOLE_BLOCK) + 1) * HOLE_BLOCK);
    const block = data.subarray(at - position, next - position);
    const zero = Buffer.compare(block, ZEROS.subarray(0, block.byteLength)) === 0;
    if (!zero && run < 0) run = at;
    if (zero && run >= 0) {
      writeAllSync(fd, data, run - position, at - run, run);
      last = at;
      run = -1;
    }
    at = next;
  }
  if (run >= 0) {
    writeAllSync(fd, data, run - position, end - run, run);
    last = end;
  }
  return last;
}
