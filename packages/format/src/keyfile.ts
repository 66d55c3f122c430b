/**
 * Key files: the master key wrapped by a secret (a passphrase or a recovery code).
 *
 * Layout (156 bytes, all integers little-endian):
 *   0   8  magic "KINVKEYF"
 *   8   1  version = 1
 *   9   1  kind: 1 = passphrase, 2 = recovery code
 *   10  1  KDF algorithm: 2 = Argon2id v1.3 (crypto_pwhash_ALG_ARGON2ID13)
 *   11  1  reserved, 0
 *   12  4  opslimit
 *   16  4  memlimit in bytes
 *   20  16 repository id
 *   36  16 salt
 *   52  24 nonce
 *   76  48 XChaCha20-Poly1305(wrapping key, nonce, master key, ad = bytes 0..52)
 *   124 32 SHA-256 of bytes 0..124
 * wrapping key = crypto_pwhash(32, secret, salt, opslimit, memlimit, Argon2id13), where
 * secret is the NFC-normalised UTF-8 passphrase or the 16 entropy bytes of the code.
 *
 * The checksum tells a damaged file (KEY_FILE_CORRUPT) from a wrong secret
 * (WRONG_PASSPHRASE / WRONG_RECOVERY_CODE).
 */
import { createHash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { NONCE_BYTES, open, seal } from './aead.js';
import { ByteReader, ByteWriter, bytesEqual, encodeUtf8 } from './bytes.js';
import { checkMasterKey } from './keys.js';
import { systemRandom, type RandomSource } from './random.js';
import { parseRecoveryCode } from './recovery-code.js';
import { sodium } from './sodium.js';

export const KEY_FILE_MAGIC = encodeUtf8('KINVKEYF');
export const KEY_FILE_VERSION = 1;
export const KEY_FILE_BYTES = 156;
export const REPOSITORY_ID_BYTES = 16;
const ALG_ARGON2ID13 = 2;
const AD_END = 52;
const BODY_END = 124;

export const KeyFileKind = { passphrase: 1, recoveryCode: 2 } as const;
export type KeyFileKind = (typeof KeyFileKind)[keyof typeof KeyFileKind];

export interface KdfParams {
  readonly opslimit: number;
  readonly memlimit: number;
}

/** libsodium's MODERATE limits: about 2.3 s and 256 MiB here. The default for new files. */
export const KDF_MODERATE: KdfParams = Object.freeze({ opslimit: 3, memlimit: 256 * 1024 * 1024 });
/** Bounds a reader accepts, so a crafted file cannot demand hours or gigabytes. */
export const KDF_READ_LIMITS = Object.freeze({
  maxOpslimit: 16,
  maxMemlimit: 1024 * 1024 * 1024,
  minOpslimit: 1,
  minMemlimit: 8 * 1024 * 1024,
});

export type KeySecret = { passphrase: string } | { recoveryCode: string };

export interface KeyFile {
  readonly kind: KeyFileKind;
  readonly kdf: KdfParams;
  readonly repositoryId: Uint8Array;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  readonly wrappedKey: Uint8Array;
}

export interface CreateKeyFileOptions {
  kdf?: KdfParams;
  /** Tests only: allow limits below MODERATE so suites stay fast. */
  allowWeakKdf?: boolean;
  random?: RandomSource;
}

function secretBytes(secret: KeySecret): { kind: KeyFileKind; bytes: Uint8Array } {
  if ('passphrase' in secret) {
    if (secret.passphrase.length === 0) {
      throw new KinvaultError('INVALID_ARGUMENT', 'The passphrase is empty. Choose a passphrase.');
    }
    return { kind: KeyFileKind.passphrase, bytes: encodeUtf8(secret.passphrase.normalize('NFC')) };
  }
  return { kind: KeyFileKind.recoveryCode, bytes: parseRecoveryCode(secret.recoveryCode) };
}

function wrappingKey(secret: Uint8Array, salt: Uint8Array, kdf: KdfParams): Uint8Array {
  return sodium.crypto_pwhash(32, secret, salt, kdf.opslimit, kdf.memlimit, ALG_ARGON2ID13);
}

function encodeHead(
  kind: KeyFileKind,
  kdf: KdfParams,
  repositoryId: Uint8Array,
  salt: Uint8Array,
): Uint8Array {
  return new ByteWriter(AD_END)
    .bytes(KEY_FILE_MAGIC)
    .u8(KEY_FILE_VERSION)
    .u8(kind)
    .u8(ALG_ARGON2ID13)
    .u8(0)
    .u32(kdf.opslimit)
    .u32(kdf.memlimit)
    .bytes(repositoryId)
    .bytes(salt)
    .finish();
}

/** Wraps `masterKey` under `secret` and returns the encoded key file. */
export function createKeyFile(
  masterKey: Uint8Array,
  repositoryId: Uint8Array,
  secret: KeySecret,
  options: CreateKeyFileOptions = {},
): Uint8Array {
  checkMasterKey(masterKey);
  if (repositoryId.byteLength !== REPOSITORY_ID_BYTES) {
    throw new KinvaultError('INVALID_ARGUMENT', `A repository id is ${REPOSITORY_ID_BYTES} bytes.`);
  }
  const kdf = options.kdf ?? KDF_MODERATE;
  const weak = kdf.opslimit < KDF_MODERATE.opslimit || kdf.memlimit < KDF_MODERATE.memlimit;
  if (weak && !options.allowWeakKdf) {
    throw new KinvaultError(
      'WEAK_KDF_PARAMS',
      `Key files need Argon2id limits of at least opslimit ${KDF_MODERATE.opslimit} and memlimit ${KDF_MODERATE.memlimit}.`,
    );
  }
  checkReadableKdf(kdf);
  const random = options.random ?? systemRandom;
  const { kind, bytes } = secretBytes(secret);
  const salt = random(16);
  const nonce = random(NONCE_BYTES);
  const head = encodeHead(kind, kdf, repositoryId, salt);
  const sealed = seal(wrappingKey(bytes, salt, kdf), nonce, masterKey, head);
  const body = new ByteWriter(KEY_FILE_BYTES).bytes(head).bytes(sealed).finish();
  const sum = createHash('sha256').update(body).digest();
  return new ByteWriter(KEY_FILE_BYTES).bytes(body).bytes(sum).finish();
}

function checkReadableKdf(kdf: KdfParams): void {
  const l = KDF_READ_LIMITS;
  if (
    kdf.opslimit < l.minOpslimit ||
    kdf.opslimit > l.maxOpslimit ||
    kdf.memlimit < l.minMemlimit ||
    kdf.memlimit > l.maxMemlimit
  ) {
    throw new KinvaultError(
      'KEY_FILE_UNSUPPORTED',
      `The key file asks for Argon2id opslimit ${kdf.opslimit} and memlimit ${kdf.memlimit}, outside ` +
        `the accepted range (opslimit ${l.minOpslimit}–${l.maxOpslimit}, memlimit ${l.minMemlimit}–${l.maxMemlimit}).`,
    );
  }
}

/** Parses and checks a key file's structure (no secret needed). */
export function decodeKeyFile(bytes: Uint8Array): KeyFile {
  const corrupt = (why: string): never => {
    throw new KinvaultError(
      'KEY_FILE_CORRUPT',
      `The key file is damaged: ${why}. Use the other key file (passphrase or recovery code).`,
    );
  };
  if (bytes.byteLength < 9 || !bytesEqual(bytes.subarray(0, 8), KEY_FILE_MAGIC))
    corrupt('it does not start with "KINVKEYF"');
  // The version comes before the length check: another version may have another size.
  const version = bytes[8];
  if (version !== KEY_FILE_VERSION) {
    throw new KinvaultError(
      'KEY_FILE_UNSUPPORTED',
      `Key file version ${version} is not understood by this program (it reads ${KEY_FILE_VERSION}). Update Kinvault.`,
    );
  }
  if (bytes.byteLength !== KEY_FILE_BYTES)
    corrupt(`it is ${bytes.byteLength} bytes, not ${KEY_FILE_BYTES}`);
  const sum = createHash('sha256').update(bytes.subarray(0, BODY_END)).digest();
  if (!bytesEqual(new Uint8Array(sum), bytes.subarray(BODY_END)))
    corrupt('its checksum does not match');
  const r = new ByteReader(bytes, 'KEY_FILE_CORRUPT', 'Key file');
  r.bytes(9);
  const kind = r.u8();
  if (kind !== KeyFileKind.passphrase && kind !== KeyFileKind.recoveryCode)
    corrupt(`unknown kind ${kind}`);
  const alg = r.u8();
  if (alg !== ALG_ARGON2ID13) {
    throw new KinvaultError(
      'KEY_FILE_UNSUPPORTED',
      `Key file uses KDF algorithm ${alg}; only Argon2id (2) is supported.`,
    );
  }
  if (r.u8() !== 0) corrupt('a reserved byte is not zero');
  const kdf = { opslimit: r.u32(), memlimit: r.u32() };
  checkReadableKdf(kdf);
  return {
    kind: kind as KeyFileKind,
    kdf,
    repositoryId: r.copy(REPOSITORY_ID_BYTES),
    salt: r.copy(16),
    nonce: r.copy(NONCE_BYTES),
    wrappedKey: r.copy(48),
  };
}

/** Unwraps the master key. Throws WRONG_PASSPHRASE / WRONG_RECOVERY_CODE / KEY_FILE_*. */
export function openKeyFile(
  bytes: Uint8Array,
  secret: KeySecret,
): { masterKey: Uint8Array; keyFile: KeyFile } {
  const keyFile = decodeKeyFile(bytes);
  const { kind, bytes: secretRaw } = secretBytes(secret);
  if (kind !== keyFile.kind) {
    const has = keyFile.kind === KeyFileKind.passphrase ? 'passphrase' : 'recovery code';
    const gave = kind === KeyFileKind.passphrase ? 'passphrase' : 'recovery code';
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `This key file is opened with a ${has}, but a ${gave} was given. Use the other key file, or give the ${has}.`,
    );
  }
  const key = wrappingKey(secretRaw, keyFile.salt, keyFile.kdf);
  try {
    const sealed = bytes.subarray(AD_END, BODY_END);
    return { masterKey: open(key, sealed, bytes.subarray(0, AD_END)), keyFile };
  } catch {
    throw kind === KeyFileKind.passphrase
      ? new KinvaultError(
          'WRONG_PASSPHRASE',
          'The passphrase is wrong. Try again, or unlock with the recovery code.',
        )
      : new KinvaultError(
          'WRONG_RECOVERY_CODE',
          'The recovery code is valid but does not open this repository. Is it the code printed for this household?',
        );
  }
}
