/**
 * Blobs: the encrypted units stored in packs.
 *
 * - id = HMAC-SHA-256(idKey, type byte ‖ plaintext). The type byte keeps a file chunk
 *   that happens to equal an encoded tree from ever sharing its id.
 * - sealed = XChaCha20-Poly1305(key, random nonce, plaintext, ad = id), where key is the
 *   data key for data blobs and the metadata key for tree blobs.
 */
import { createHmac } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { NONCE_BYTES, open, seal, SEAL_OVERHEAD, sealParts } from './aead.js';
import { bytesEqual, toHex } from './bytes.js';
import type { RepositoryKeys } from './keys.js';
import { systemRandom, type RandomSource } from './random.js';

export const BlobType = { data: 1, tree: 2 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export const BLOB_ID_BYTES = 32;
/** Largest plaintext a blob may hold (a tree for a huge directory is the biggest case). */
export const MAX_BLOB_PLAINTEXT = 64 * 1024 * 1024;
export const MAX_SEALED_BLOB = MAX_BLOB_PLAINTEXT + SEAL_OVERHEAD;

export function isBlobType(value: number): value is BlobType {
  return value === BlobType.data || value === BlobType.tree;
}

function typeByte(type: BlobType): Uint8Array {
  return Uint8Array.of(type);
}

export function blobId(
  keys: Pick<RepositoryKeys, 'idKey'>,
  type: BlobType,
  plaintext: Uint8Array,
): Uint8Array {
  const mac = createHmac('sha256', keys.idKey).update(typeByte(type)).update(plaintext).digest();
  return new Uint8Array(mac); // a copy with a buffer of its own (safe to transfer)
}

function keyFor(keys: Pick<RepositoryKeys, 'dataKey' | 'metadataKey'>, type: BlobType): Uint8Array {
  return type === BlobType.data ? keys.dataKey : keys.metadataKey;
}

export function sealBlob(
  keys: Pick<RepositoryKeys, 'dataKey' | 'metadataKey'>,
  type: BlobType,
  id: Uint8Array,
  plaintext: Uint8Array,
  random: RandomSource = systemRandom,
): Uint8Array {
  checkPlaintext(plaintext);
  return seal(keyFor(keys, type), random(NONCE_BYTES), plaintext, id);
}

/** `sealBlob` as parts whose concatenation is the sealed blob (no joining copy). */
export function sealBlobParts(
  keys: Pick<RepositoryKeys, 'dataKey' | 'metadataKey'>,
  type: BlobType,
  id: Uint8Array,
  plaintext: Uint8Array,
  random: RandomSource = systemRandom,
): Uint8Array[] {
  checkPlaintext(plaintext);
  return sealParts(keyFor(keys, type), random(NONCE_BYTES), plaintext, id);
}

function checkPlaintext(plaintext: Uint8Array): void {
  if (plaintext.byteLength > MAX_BLOB_PLAINTEXT) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `A blob holds at most ${MAX_BLOB_PLAINTEXT} bytes; got ${plaintext.byteLength}.`,
    );
  }
}

/**
 * Opens a sealed blob and checks that the plaintext hashes to `id`.
 * Throws DECRYPT_FAILED (wrong key, changed bytes) or BLOB_ID_MISMATCH.
 */
export function openBlob(
  keys: Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>,
  type: BlobType,
  id: Uint8Array,
  sealed: Uint8Array,
): Uint8Array {
  let plaintext: Uint8Array;
  try {
    plaintext = open(keyFor(keys, type), sealed, id);
  } catch (error) {
    throw new KinvaultError(
      'DECRYPT_FAILED',
      `Blob ${toHex(id)} could not be decrypted: the master key is wrong or the blob is damaged. ` +
        'Another copy of its pack may be intact ("kinvaultd check" on the NAS checks them).',
      { cause: error, details: { blobId: toHex(id) } },
    );
  }
  if (!bytesEqual(blobId(keys, type, plaintext), id)) {
    throw new KinvaultError(
      'BLOB_ID_MISMATCH',
      `Blob ${toHex(id)} decrypted to content with another id: the pack index is wrong.`,
      { details: { blobId: toHex(id) } },
    );
  }
  return plaintext;
}
