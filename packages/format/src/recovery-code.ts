/**
 * Recovery codes: 16 random bytes plus a 4-byte checksum (the first bytes of their
 * SHA-256), written as 32 Crockford base32 characters in eight groups of four, e.g.
 * `7K3M-Q0ZD-…`. Parsing ignores case, spaces and dashes and reads O as 0 and I, L
 * as 1, so a code copied from paper by hand still works; a typo fails the checksum.
 */
import { createHash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import type { RandomSource } from './random.js';

export const RECOVERY_ENTROPY_BYTES = 16;
const CHECKSUM_BYTES = 4;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODE_CHARS = 32;

function checksum(entropy: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(entropy).digest().subarray(0, CHECKSUM_BYTES));
}

function toBase32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out; // 20 bytes = 160 bits = exactly 32 characters
}

/** The printable code for 16 bytes of entropy. */
export function formatRecoveryCode(entropy: Uint8Array): string {
  if (entropy.byteLength !== RECOVERY_ENTROPY_BYTES) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Recovery entropy is ${RECOVERY_ENTROPY_BYTES} bytes.`,
    );
  }
  const raw = new Uint8Array(RECOVERY_ENTROPY_BYTES + CHECKSUM_BYTES);
  raw.set(entropy);
  raw.set(checksum(entropy), RECOVERY_ENTROPY_BYTES);
  return toBase32(raw).match(/.{4}/g)!.join('-');
}

export function generateRecoveryCode(random: RandomSource): { code: string; entropy: Uint8Array } {
  const entropy = random(RECOVERY_ENTROPY_BYTES);
  return { code: formatRecoveryCode(entropy), entropy };
}

/** The 16 entropy bytes of a typed-in code; RECOVERY_CODE_INVALID on any typo. */
export function parseRecoveryCode(input: string): Uint8Array {
  const cleaned = input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  const bad = [...cleaned].find((c) => !ALPHABET.includes(c));
  if (bad !== undefined) {
    throw new KinvaultError(
      'RECOVERY_CODE_INVALID',
      `The recovery code contains "${bad}", which never appears in a recovery code. Check it against the printed copy.`,
    );
  }
  if (cleaned.length !== CODE_CHARS) {
    throw new KinvaultError(
      'RECOVERY_CODE_INVALID',
      `A recovery code has ${CODE_CHARS} letters and digits (eight groups of four); this one has ${cleaned.length}.`,
    );
  }
  const raw = new Uint8Array(RECOVERY_ENTROPY_BYTES + CHECKSUM_BYTES);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const c of cleaned) {
    acc = (acc << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      raw[at++] = (acc >>> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  const entropy = raw.slice(0, RECOVERY_ENTROPY_BYTES);
  const expected = checksum(entropy);
  for (let i = 0; i < CHECKSUM_BYTES; i++) {
    if (raw[RECOVERY_ENTROPY_BYTES + i] !== expected[i]) {
      throw new KinvaultError(
        'RECOVERY_CODE_INVALID',
        'The recovery code has a typo: its checksum does not match. Check each group against the printed copy.',
      );
    }
  }
  return entropy;
}
