import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codeOf } from './test-support.js';
import {
  createKeyFile,
  decodeKeyFile,
  KDF_MODERATE,
  KEY_FILE_BYTES,
  KeyFileKind,
  openKeyFile,
  type CreateKeyFileOptions,
} from './keyfile.js';
import { generateRecoveryCode } from './recovery-code.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('keyfile.test');
const fast: CreateKeyFileOptions = {
  kdf: { opslimit: 1, memlimit: 8 * 1024 * 1024 },
  allowWeakKdf: true,
  random,
};
const masterKey = random(32);
const repositoryId = random(16);

/** Rewrites the checksum so that a structural edit reaches the field checks. */
function resum(file: Uint8Array): Uint8Array {
  const out = file.slice();
  out.set(createHash('sha256').update(out.subarray(0, 124)).digest(), 124);
  return out;
}

describe('key files', () => {
  it('wrap and unwrap the master key with a passphrase', () => {
    const file = createKeyFile(masterKey, repositoryId, { passphrase: 'correct horse' }, fast);
    expect(file.byteLength).toBe(KEY_FILE_BYTES);
    const opened = openKeyFile(file, { passphrase: 'correct horse' });
    expect(opened.masterKey).toEqual(masterKey);
    expect(opened.keyFile.kind).toBe(KeyFileKind.passphrase);
    expect(opened.keyFile.repositoryId).toEqual(repositoryId);
  });

  it('say WRONG_PASSPHRASE for a wrong passphrase', () => {
    const file = createKeyFile(masterKey, repositoryId, { passphrase: 'correct horse' }, fast);
    expect(codeOf(() => openKeyFile(file, { passphrase: 'Correct horse' }))).toBe(
      'WRONG_PASSPHRASE',
    );
  });

  it('treat NFC and NFD spellings of a passphrase as the same passphrase', () => {
    const file = createKeyFile(masterKey, repositoryId, { passphrase: 'Ma\u0308dchen' }, fast);
    expect(openKeyFile(file, { passphrase: 'M\u00e4dchen' }).masterKey).toEqual(masterKey);
  });

  it('open with the recovery code, and refuse a different valid code', () => {
    const { code } = generateRecoveryCode(random);
    const file = createKeyFile(masterKey, repositoryId, { recoveryCode: code }, fast);
    expect(openKeyFile(file, { recoveryCode: code.toLowerCase() }).masterKey).toEqual(masterKey);
    const other = generateRecoveryCode(random).code;
    expect(codeOf(() => openKeyFile(file, { recoveryCode: other }))).toBe('WRONG_RECOVERY_CODE');
    expect(codeOf(() => openKeyFile(file, { passphrase: 'x' }))).toBe('INVALID_ARGUMENT');
  });

  it('change the passphrase by writing a new key file; the master key stays', () => {
    const old = createKeyFile(masterKey, repositoryId, { passphrase: 'old one' }, fast);
    const { masterKey: unlocked } = openKeyFile(old, { passphrase: 'old one' });
    const renewed = createKeyFile(unlocked, repositoryId, { passphrase: 'new one' }, fast);
    expect(openKeyFile(renewed, { passphrase: 'new one' }).masterKey).toEqual(masterKey);
    expect(codeOf(() => openKeyFile(renewed, { passphrase: 'old one' }))).toBe('WRONG_PASSPHRASE');
  });

  it('report any damaged byte as KEY_FILE_CORRUPT, not as a wrong passphrase', () => {
    const file = createKeyFile(masterKey, repositoryId, { passphrase: 'pw' }, fast);
    for (let at = 0; at < file.byteLength; at += 7) {
      const bad = file.slice();
      bad[at]! ^= 0x10;
      expect(
        codeOf(() => openKeyFile(bad, { passphrase: 'pw' })),
        `byte ${at}`,
      ).toBe('KEY_FILE_CORRUPT');
    }
    expect(codeOf(() => decodeKeyFile(file.subarray(0, 100)))).toBe('KEY_FILE_CORRUPT');
    expect(codeOf(() => decodeKeyFile(new Uint8Array(0)))).toBe('KEY_FILE_CORRUPT');
  });

  it('refuse newer versions and absurd Argon2id limits before running the KDF', () => {
    const file = createKeyFile(masterKey, repositoryId, { passphrase: 'pw' }, fast);
    const newer = file.slice();
    newer[8] = 2;
    expect(codeOf(() => decodeKeyFile(resum(newer)))).toBe('KEY_FILE_UNSUPPORTED');
    // A future version may have another size: still "unsupported", not "damaged".
    expect(codeOf(() => decodeKeyFile(Buffer.concat([newer, new Uint8Array(20)])))).toBe(
      'KEY_FILE_UNSUPPORTED',
    );
    const greedy = file.slice();
    new DataView(greedy.buffer).setUint32(16, 0xffff_ffff, true);
    const started = Date.now();
    expect(codeOf(() => openKeyFile(resum(greedy), { passphrase: 'pw' }))).toBe(
      'KEY_FILE_UNSUPPORTED',
    );
    expect(Date.now() - started).toBeLessThan(1000);
    const slow = file.slice();
    new DataView(slow.buffer).setUint32(12, 1_000_000, true);
    expect(codeOf(() => decodeKeyFile(resum(slow)))).toBe('KEY_FILE_UNSUPPORTED');
  });

  it('refuse limits below MODERATE unless a test asks for them', () => {
    expect(
      codeOf(() =>
        createKeyFile(
          masterKey,
          repositoryId,
          { passphrase: 'pw' },
          { kdf: { opslimit: 1, memlimit: 8 << 20 } },
        ),
      ),
    ).toBe('WEAK_KDF_PARAMS');
    expect(codeOf(() => createKeyFile(masterKey, repositoryId, { passphrase: '' }, fast))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('use MODERATE limits by default', () => {
    const file = createKeyFile(masterKey, repositoryId, { passphrase: 'pw' });
    expect(decodeKeyFile(file).kdf).toEqual(KDF_MODERATE);
    expect(openKeyFile(file, { passphrase: 'pw' }).masterKey).toEqual(masterKey);
  });
});
