/** Writes that never accept a short write silently. */
import type { FileHandle } from 'node:fs/promises';

export async function writeAll(fh: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  for (const part of parts) {
    let at = 0;
    while (at < part.byteLength) {
      const { bytesWritten } = await fh.write(part, at, part.byteLength - at);
      if (bytesWritten <= 0) throw new Error('the disk accepted no bytes (is it full?)');
      at += bytesWritten;
    }
  }
}
