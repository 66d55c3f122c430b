/**
 * Signed key-file replacements. Only a holder of the master key may replace one of the
 * household's key files (a new passphrase, or a recovery after a forgotten one). The
 * coordinator cannot read anything, so it checks a signature instead: the household's
 * Ed25519 key pair is derived from the master key (sub-key 6), the coordinator keeps
 * only the public key, and a replacement is signed over the repository id, the kind,
 * the key file's generation (how many times it was changed) and the SHA-256 of both the
 * current and the new key file. A signature is therefore good for exactly one change
 * from exactly one state: it cannot be replayed later, not even after the key file was
 * put back as it was (its generation moved on).
 */
import { createHash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { ByteWriter, encodeUtf8 } from './bytes.js';
import { KeyFileKind, REPOSITORY_ID_BYTES } from './keyfile.js';
import type { RepositoryKeys } from './keys.js';
import { sodium } from './sodium.js';

export const KEY_FILE_REPLACEMENT_DOMAIN = encodeUtf8('kinvault key file replacement v1');
export const SIGNATURE_BYTES = 64;
export const SIGN_PUBLIC_KEY_BYTES = 32;

export interface KeyFileReplacement {
  repositoryId: Uint8Array;
  kind: KeyFileKind;
  /** How many times this key file was changed so far (the coordinator's count). */
  generation: number;
  /** The key file being replaced, exactly as the coordinator holds it. */
  current: Uint8Array;
  /** The new key file. */
  next: Uint8Array;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

/**
 * domain[32] ‖ repository id[16] ‖ kind u8 ‖ generation u64 ‖ SHA-256(current)[32] ‖
 * SHA-256(next)[32]: 121 bytes.
 */
export function keyFileReplacementMessage(r: KeyFileReplacement): Uint8Array {
  if (r.repositoryId.byteLength !== REPOSITORY_ID_BYTES)
    throw new KinvaultError('INVALID_ARGUMENT', 'A repository id is 16 bytes.');
  if (r.kind !== KeyFileKind.passphrase && r.kind !== KeyFileKind.recoveryCode)
    throw new KinvaultError('INVALID_ARGUMENT', `Key file kind ${String(r.kind)} is unknown.`);
  if (!Number.isSafeInteger(r.generation) || r.generation < 0)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Key file generation ${r.generation} is impossible.`,
    );
  return new ByteWriter(121)
    .bytes(KEY_FILE_REPLACEMENT_DOMAIN)
    .bytes(r.repositoryId)
    .u8(r.kind)
    .u64(r.generation)
    .bytes(sha256(r.current))
    .bytes(sha256(r.next))
    .finish();
}

/** Signs a replacement with the household signing key (agents only). */
export function signKeyFileReplacement(
  keys: Pick<RepositoryKeys, 'signSecretKey'>,
  r: KeyFileReplacement,
): Uint8Array {
  return sodium.crypto_sign_detached(keyFileReplacementMessage(r), keys.signSecretKey);
}

/** True when `signature` is the household's signature of this replacement. */
export function verifyKeyFileReplacement(
  signPublicKey: Uint8Array,
  r: KeyFileReplacement,
  signature: Uint8Array,
): boolean {
  if (signPublicKey.byteLength !== SIGN_PUBLIC_KEY_BYTES) return false;
  if (signature.byteLength !== SIGNATURE_BYTES) return false;
  return sodium.crypto_sign_verify_detached(signature, keyFileReplacementMessage(r), signPublicKey);
}
