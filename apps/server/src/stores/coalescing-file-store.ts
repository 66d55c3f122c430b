/**
 * @tus/file-store with large writes: the request body arrives in small pieces (TLS
 * records), and writing each one with its own fs.write cost the coordinator more CPU
 * than anything else while receiving packs. Pieces are joined into writes of up to
 * 1 MiB before they reach the file; bytes and offsets are unchanged.
 */
import { Transform, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { FileStore } from '@tus/file-store';

const WRITE_SIZE = 1024 * 1024;

function coalesce(): Transform {
  let parts: Buffer[] = [];
  let held = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      held += chunk.length;
      if (held >= WRITE_SIZE) {
        const joined = Buffer.concat(parts, held);
        parts = [];
        held = 0;
        return callback(null, joined);
      }
      callback();
    },
    flush(callback) {
      callback(null, held > 0 ? Buffer.concat(parts, held) : undefined);
    },
  });
}

export class CoalescingFileStore extends FileStore {
  override write(
    readable: IncomingMessage | Readable,
    fileId: string,
    offset: number,
  ): Promise<number> {
    const joined = coalesce();
    readable.on('error', (e) => joined.destroy(e));
    return super.write(readable.pipe(joined), fileId, offset);
  }
}
