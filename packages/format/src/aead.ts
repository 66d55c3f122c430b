/**
 * XChaCha20-Poly1305 (IETF), libsodium layout: nonce (24) ‖ ciphertext ‖ tag (16).
 *
 * Two byte-identical implementations:
 * - the fast path: HChaCha20 (libsodium `crypto_core_hchacha20`) over the first 16
 *   nonce bytes gives a sub-key; node:crypto's native ChaCha20-Poly1305 then runs with
 *   the nonce 0x00000000 ‖ nonce[16..24]. This is exactly how libsodium builds
 *   XChaCha20-Poly1305 IETF, at the speed of OpenSSL's assembly.
 * - the reference: libsodium's `crypto_aead_xchacha20poly1305_ietf_*`, used where
 *   node:crypto lacks chacha20-poly1305 and by tests that prove both paths agree.
 *
 * Contract: `open*` throws DECRYPT_FAILED for a wrong key, wrong associated data or
 * any changed byte; it never returns unauthenticated plaintext.
 */
import { createCipheriv, createDecipheriv, getCiphers } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { allocBytes } from './bytes.js';
import { sodium } from './sodium.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

export const nativeAvailable = getCiphers().includes('chacha20-poly1305');

const EMPTY = new Uint8Array(0);

function check(key: Uint8Array, nonce?: Uint8Array): void {
  if (key.byteLength !== KEY_BYTES) {
    throw new KinvaultError('INVALID_ARGUMENT', `An encryption key is ${KEY_BYTES} bytes.`);
  }
  if (nonce !== undefined && nonce.byteLength !== NONCE_BYTES) {
    throw new KinvaultError('INVALID_ARGUMENT', `A nonce is ${NONCE_BYTES} bytes.`);
  }
}

function ietfParams(key: Uint8Array, nonce: Uint8Array): { subkey: Uint8Array; iv: Uint8Array } {
  const subkey = sodium.crypto_core_hchacha20(nonce.subarray(0, 16), key, null);
  const iv = new Uint8Array(12);
  iv.set(nonce.subarray(16, 24), 4);
  return { subkey, iv };
}

function decryptFailed(): KinvaultError {
  return new KinvaultError(
    'DECRYPT_FAILED',
    'Decryption failed: the key is wrong or the data was changed or damaged.',
  );
}

/**
 * Seals with the native fast path and returns the sealed bytes as three parts,
 * nonce ‖ ciphertext ‖ tag, so that large blobs are not copied once more to join them.
 */
export function sealNativeParts(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array = EMPTY,
): [Uint8Array, Uint8Array, Uint8Array] {
  check(key, nonce);
  const { subkey, iv } = ietfParams(key, nonce);
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength });
  const ct = cipher.update(plaintext);
  cipher.final();
  return [nonce, ct, cipher.getAuthTag()];
}

/** Seals with the native fast path. */
export function sealNative(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array = EMPTY,
): Uint8Array {
  const parts = sealNativeParts(key, nonce, plaintext, ad);
  const out = allocBytes(NONCE_BYTES + plaintext.byteLength + TAG_BYTES);
  out.set(parts[0], 0);
  out.set(parts[1], NONCE_BYTES);
  out.set(parts[2], NONCE_BYTES + plaintext.byteLength);
  return out;
}

/** Opens with the native fast path. */
export function openNative(
  key: Uint8Array,
  sealed: Uint8Array,
  ad: Uint8Array = EMPTY,
): Uint8Array {
  check(key);
  if (sealed.byteLength < SEAL_OVERHEAD) throw decryptFailed();
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const ctEnd = sealed.byteLength - TAG_BYTES;
  const { subkey, iv } = ietfParams(key, nonce);
  const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(ad, { plaintextLength: ctEnd - NONCE_BYTES });
  decipher.setAuthTag(sealed.subarray(ctEnd));
  const pt = decipher.update(sealed.subarray(NONCE_BYTES, ctEnd));
  try {
    decipher.final();
  } catch {
    throw decryptFailed();
  }
  return new Uint8Array(pt.buffer, pt.byteOffset, pt.byteLength);
}

/** Seals with libsodium (reference implementation). */
export function sealReference(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array = EMPTY,
): Uint8Array {
  check(key, nonce);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
  const out = new Uint8Array(NONCE_BYTES + ct.byteLength);
  out.set(nonce, 0);
  out.set(ct, NONCE_BYTES);
  return out;
}

/** Opens with libsodium (reference implementation). */
export function openReference(
  key: Uint8Array,
  sealed: Uint8Array,
  ad: Uint8Array = EMPTY,
): Uint8Array {
  check(key);
  if (sealed.byteLength < SEAL_OVERHEAD) throw decryptFailed();
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      sealed.subarray(NONCE_BYTES),
      ad,
      sealed.subarray(0, NONCE_BYTES),
      key,
    );
  } catch {
    throw decryptFailed();
  }
}

/** The implementation every other module uses: native when available. */
export const seal = nativeAvailable ? sealNative : sealReference;
/** `seal` as parts whose concatenation is the sealed bytes. */
export const sealParts: (
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad?: Uint8Array,
) => Uint8Array[] = nativeAvailable
  ? sealNativeParts
  : (key, nonce, plaintext, ad) => [sealReference(key, nonce, plaintext, ad)];
export const open = nativeAvailable ? openNative : openReference;
