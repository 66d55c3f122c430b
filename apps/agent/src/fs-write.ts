/** Writes that never accept a short write silently. */
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
