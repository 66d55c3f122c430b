/**
 * Joins a stream's small pieces (an upload body arrives in TLS records of 16 KiB) into
 * pieces of up to 1 MiB; bytes and order are unchanged. Everything downstream — stream
 * conversions, the file writes — costs per piece, not per byte. `onPiece` sees each
 * piece as it goes downstream (e.g. to hash the bytes in passing).
 */
import { Transform } from 'node:stream';

const PIECE = 1024 * 1024;

export function coalesce(onPiece?: (piece: Buffer) => void): Transform {
  let parts: Buffer[] = [];
  let held = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      held += chunk.length;
      if (held >= PIECE) {
        const joined = Buffer.concat(parts, held);
        parts = [];
        held = 0;
        onPiece?.(joined);
        return callback(null, joined);
      }
      callback();
    },
    flush(callback) {
      const last = held > 0 ? Buffer.concat(parts, held) : undefined;
      if (last) onPiece?.(last);
      callback(null, last);
    },
  });
}
