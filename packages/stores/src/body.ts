/** Bodies for `Store.put`, and reading a whole object back. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { KinvaultError } from '@kinvault/protocol';
import type { Body, ObjectInfo, Range, Store } from './store.js';

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A body of bytes in memory. */
export function bytesBody(bytes: Uint8Array, sha256 = sha256Hex(bytes)): Body {
  return {
    size: bytes.byteLength,
    sha256,
    async *open() {
      yield bytes;
    },
  };
}

/** A body read from a file whose SHA-256 is known (a pack is named by it). */
export async function fileBody(path: string, sha256: string): Promise<Body> {
  const { size } = await stat(path);
  return { size, sha256, open: () => createReadStream(path, { highWaterMark: 1 << 20 }) };
}

/** Every object under a prefix, following the pages of `list`. */
export async function listAll(store: Store, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let after: string | null = null;
  do {
    const page = await store.list(prefix, { after });
    out.push(...page.objects);
    after = page.next;
  } while (after);
  return out;
}

/** Reads an object (or a range of it) into memory. */
export async function readAll(store: Store, key: string, range?: Range): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of await store.get(key, range)) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/**
 * Passes a body's bytes through while counting and hashing them; `finish()` throws
 * CHECKSUM_MISMATCH unless they were exactly the body's size and SHA-256.
 */
export function checkedBytes(body: Body, label: string, key: string) {
  const hash = createHash('sha256');
  let size = 0;
  return {
    async *chunks(): AsyncGenerator<Uint8Array> {
      for await (const chunk of body.open()) {
        size += chunk.byteLength;
        if (size > body.size)
          throw mismatch(label, key, `more than the ${body.size} bytes declared`);
        hash.update(chunk);
        yield chunk;
      }
    },
    finish(): void {
      if (size !== body.size)
        throw mismatch(label, key, `${size} bytes where ${body.size} were declared`);
      const got = hash.digest('hex');
      if (got !== body.sha256) throw mismatch(label, key, `SHA-256 ${got}, not ${body.sha256}`);
    },
  };
}

function mismatch(label: string, key: string, what: string): KinvaultError {
  return new KinvaultError(
    'CHECKSUM_MISMATCH',
    `Refused to store ${key} at ${label}: its bytes were ${what}. Nothing was stored; the source may have changed or be damaged.`,
    { details: { key } },
  );
}

/** Checks a range against an object's size (INVALID_ARGUMENT past the end). */
export function checkRange(label: string, key: string, size: number, range?: Range): Range {
  if (!range) return { offset: 0, length: size };
  const { offset, length } = range;
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > size
  )
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Bytes ${offset}–${offset + length} of ${key} at ${label} were asked for; it holds ${size}.`,
    );
  return range;
}
