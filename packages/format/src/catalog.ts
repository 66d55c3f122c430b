/**
 * Sealed catalogs: anyone holding the household public key (the coordinator) can
 * encrypt a catalog; only the master key's box secret key can read it.
 *
 * Layout v1:
 *   "KINVCATL" ‖ u8 version = 1
 *   80 bytes  crypto_box_seal(file key[32], household box public key)
 *   24 bytes  crypto_secretstream_xchacha20poly1305 header (under the file key)
 *   frames:   u32le length ‖ secretstream message (plaintext ≤ 1 MiB, + 17 bytes);
 *             the last frame carries TAG_FINAL, nothing may follow it.
 *
 * Contract: opening yields plaintext only after each frame authenticates; a missing
 * final frame, extra bytes, a reordered or changed frame are CATALOG_INVALID.
 */
import { KinvaultError } from '@kinvault/protocol';
import { bytesEqual, encodeUtf8 } from './bytes.js';
import { sodium } from './sodium.js';

export const CATALOG_MAGIC = encodeUtf8('KINVCATL');
export const CATALOG_VERSION = 1;
export const CATALOG_FRAME_PLAINTEXT = 1024 * 1024;
const SEALED_KEY_BYTES = 32 + sodium.crypto_box_SEALBYTES;
const SS_HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES;
const SS_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES;
const TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
const TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;

function invalid(why: string): KinvaultError {
  return new KinvaultError('CATALOG_INVALID', `The sealed catalog cannot be opened: ${why}.`);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** Re-cuts a byte stream into pieces of exactly `size` bytes (the last may be shorter). */
async function* rechunk(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (const piece of source) {
    let p = 0;
    while (p < piece.byteLength) {
      const n = Math.min(size - fill, piece.byteLength - p);
      buf.set(piece.subarray(p, p + n), fill);
      fill += n;
      p += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  yield buf.subarray(0, fill);
}

/** Encrypts a catalog stream to the household public key. */
export async function* sealCatalog(
  publicKey: Uint8Array,
  plaintext: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (publicKey.byteLength !== sodium.crypto_box_PUBLICKEYBYTES) {
    throw new KinvaultError('INVALID_ARGUMENT', 'A household public key is 32 bytes.');
  }
  const fileKey = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(fileKey);
  yield CATALOG_MAGIC;
  yield Uint8Array.of(CATALOG_VERSION);
  yield sodium.crypto_box_seal(fileKey, publicKey);
  yield header;
  // Hold one frame back so that the last one can carry TAG_FINAL.
  let pending: Uint8Array | undefined;
  for await (const frame of rechunk(plaintext, CATALOG_FRAME_PLAINTEXT)) {
    if (pending !== undefined) {
      const c = sodium.crypto_secretstream_xchacha20poly1305_push(
        state,
        pending,
        null,
        TAG_MESSAGE,
      );
      yield u32(c.byteLength);
      yield c;
    }
    pending = frame.slice();
  }
  const last = sodium.crypto_secretstream_xchacha20poly1305_push(
    state,
    pending ?? new Uint8Array(0),
    null,
    TAG_FINAL,
  );
  yield u32(last.byteLength);
  yield last;
}

/** Reads exactly n bytes from an async byte iterator, or fewer at its end. */
class Reader {
  private parts: Uint8Array[] = [];
  private held = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}
  async take(n: number): Promise<Uint8Array> {
    while (this.held < n && !this.done) {
      const next = await this.it.next();
      if (next.done) this.done = true;
      else {
        this.parts.push(next.value);
        this.held += next.value.byteLength;
      }
    }
    const joined: Uint8Array = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    const out = joined.subarray(0, Math.min(n, joined.byteLength));
    const rest = joined.subarray(out.byteLength);
    this.parts = rest.byteLength > 0 ? [rest] : [];
    this.held = rest.byteLength;
    return out;
  }
}

/** Decrypts a sealed catalog with the household key pair. */
export async function* openCatalog(
  publicKey: Uint8Array,
  secretKey: Uint8Array,
  sealed: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const source = (async function* () {
    yield* sealed;
  })();
  const r = new Reader(source);
  const magic = await r.take(8);
  if (!bytesEqual(magic, CATALOG_MAGIC)) throw invalid('it does not start with "KINVCATL"');
  const version = (await r.take(1))[0];
  if (version !== CATALOG_VERSION) {
    throw new KinvaultError(
      'CATALOG_INVALID',
      `Catalog version ${version} is not supported by this program. Update Kinvault.`,
    );
  }
  const sealedKey = await r.take(SEALED_KEY_BYTES);
  if (sealedKey.byteLength !== SEALED_KEY_BYTES) throw invalid('it is truncated');
  let fileKey: Uint8Array;
  try {
    fileKey = sodium.crypto_box_seal_open(sealedKey, publicKey, secretKey);
  } catch {
    throw invalid('it was sealed to another household key, or its key block is damaged');
  }
  const header = await r.take(SS_HEADER);
  if (header.byteLength !== SS_HEADER) throw invalid('it is truncated');
  const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, fileKey);
  for (;;) {
    const len = await r.take(4);
    if (len.byteLength < 4) throw invalid('it ends before its final frame (truncated)');
    const n = new DataView(len.buffer, len.byteOffset, 4).getUint32(0, true);
    if (n < SS_ABYTES || n > CATALOG_FRAME_PLAINTEXT + SS_ABYTES)
      throw invalid(`a frame claims ${n} bytes`);
    const frame = await r.take(n);
    if (frame.byteLength < n) throw invalid('it ends inside a frame (truncated)');
    let result: { message: Uint8Array; tag: number } | false;
    try {
      result = sodium.crypto_secretstream_xchacha20poly1305_pull(state, frame, null);
    } catch {
      result = false;
    }
    if (!result) throw invalid('a frame fails authentication (damaged or reordered)');
    if (result.message.byteLength > 0) yield result.message;
    if (result.tag === TAG_FINAL) break;
  }
  if ((await r.take(1)).byteLength !== 0) throw invalid('bytes follow the final frame');
}

/** Convenience: seal or open a whole buffer. */
export async function sealCatalogBytes(
  publicKey: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of sealCatalog(publicKey, [plaintext])) parts.push(p);
  return Buffer.concat(parts);
}

export async function openCatalogBytes(
  publicKey: Uint8Array,
  secretKey: Uint8Array,
  sealed: Uint8Array,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of openCatalog(publicKey, secretKey, [sealed])) parts.push(p);
  return Buffer.concat(parts);
}
