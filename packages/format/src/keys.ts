/**
 * The key hierarchy. One 32-byte master key per household; every other key is derived
 * from it with libsodium `crypto_kdf_derive_from_key` (BLAKE2b) under the context
 * "kinvault". Sub-key ids are part of format v1 and never change meaning.
 */
import { KinvaultError } from '@kinvault/protocol';
import { sodium } from './sodium.js';
import { createCipheriv } from 'node:crypto';

export const MASTER_KEY_BYTES = 32;
export const KDF_CONTEXT = 'kinvault';

export const SubkeyId = {
  /** HMAC-SHA-256 key for blob ids. */
  id: 1,
  /** XChaCha20-Poly1305 key for data blobs. */
  data: 2,
  /** XChaCha20-Poly1305 key for tree blobs, pack headers and snapshot manifests. */
  metadata: 3,
  /** Seed of the chunker's gear table. */
  cdcSeed: 4,
  /** Seed of the household X25519 box key pair (sealed catalogs). */
  boxSeed: 5,
  /** Seed of the household Ed25519 signing key pair (key-file replacements). */
  signSeed: 6,
} as const;

export interface RepositoryKeys {
  readonly idKey: Uint8Array;
  readonly dataKey: Uint8Array;
  readonly metadataKey: Uint8Array;
  readonly cdcSeed: Uint8Array;
  readonly boxPublicKey: Uint8Array;
  readonly boxSecretKey: Uint8Array;
  /** Ed25519 public key: the coordinator keeps it to check signed key-file replacements. */
  readonly signPublicKey: Uint8Array;
  /** Ed25519 secret key in libsodium's layout (seed ‖ public key, 64 bytes). */
  readonly signSecretKey: Uint8Array;
}

export function checkMasterKey(masterKey: Uint8Array): void {
  if (!(masterKey instanceof Uint8Array) || masterKey.byteLength !== MASTER_KEY_BYTES) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `A master key is ${MASTER_KEY_BYTES} bytes; got ${masterKey?.byteLength ?? typeof masterKey}.`,
    );
  }
}

export function deriveSubkey(masterKey: Uint8Array, id: number): Uint8Array {
  checkMasterKey(masterKey);
  return sodium.crypto_kdf_derive_from_key(32, id, KDF_CONTEXT, masterKey);
}

export function deriveKeys(masterKey: Uint8Array): RepositoryKeys {
  const box = sodium.crypto_box_seed_keypair(deriveSubkey(masterKey, SubkeyId.boxSeed));
  const sign = sodium.crypto_sign_seed_keypair(deriveSubkey(masterKey, SubkeyId.signSeed));
  return Object.freeze({
    idKey: deriveSubkey(masterKey, SubkeyId.id),
    dataKey: deriveSubkey(masterKey, SubkeyId.data),
    metadataKey: deriveSubkey(masterKey, SubkeyId.metadata),
    cdcSeed: deriveSubkey(masterKey, SubkeyId.cdcSeed),
    boxPublicKey: box.publicKey,
    boxSecretKey: box.privateKey,
    signPublicKey: sign.publicKey,
    signSecretKey: sign.privateKey,
  });
}

/** 32 random bytes from the given source. */
export function generateMasterKey(random: (n: number) => Uint8Array): Uint8Array {
  const key = random(MASTER_KEY_BYTES);
  checkMasterKey(key);
  return key;
}

// Kept here so both the chunker and the docs point at one definition.
/** Gear table: the first 1024 bytes of ChaCha20(cdcSeed, nonce 0, counter 0), as 256 u32le. */
export function gearTable(cdcSeed: Uint8Array): Uint32Array {
  if (cdcSeed.byteLength !== 32) {
    throw new KinvaultError('INVALID_ARGUMENT', 'The chunker seed is 32 bytes.');
  }
  const stream = createCipheriv('chacha20', cdcSeed, Buffer.alloc(16)).update(Buffer.alloc(1024));
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) table[i] = stream.readUInt32LE(i * 4);
  return table;
}
