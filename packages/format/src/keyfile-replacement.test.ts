import { describe, expect, it } from 'vitest';
import { KeyFileKind } from './keyfile.js';
import {
  keyFileReplacementMessage,
  signKeyFileReplacement,
  verifyKeyFileReplacement,
} from './keyfile-replacement.js';
import { deriveKeys } from './keys.js';
import { systemRandom } from './random.js';

describe('signed key-file replacements', () => {
  const keys = deriveKeys(systemRandom(32));
  const r = {
    repositoryId: systemRandom(16),
    kind: KeyFileKind.passphrase,
    generation: 3,
    current: systemRandom(156),
    next: systemRandom(156),
  };

  it('verify with the household public key, for exactly the signed change', () => {
    const sig = signKeyFileReplacement(keys, r);
    expect(verifyKeyFileReplacement(keys.signPublicKey, r, sig)).toBe(true);
    const other = deriveKeys(systemRandom(32));
    expect(verifyKeyFileReplacement(other.signPublicKey, r, sig)).toBe(false);
    expect(
      verifyKeyFileReplacement(keys.signPublicKey, { ...r, next: systemRandom(156) }, sig),
    ).toBe(false);
    // Replayed after another change (the current file differs): refused.
    expect(verifyKeyFileReplacement(keys.signPublicKey, { ...r, current: r.next }, sig)).toBe(
      false,
    );
    expect(
      verifyKeyFileReplacement(keys.signPublicKey, { ...r, kind: KeyFileKind.recoveryCode }, sig),
    ).toBe(false);
    expect(
      verifyKeyFileReplacement(keys.signPublicKey, { ...r, repositoryId: systemRandom(16) }, sig),
    ).toBe(false);
    const flipped = Uint8Array.from(sig);
    flipped[10]! ^= 1;
    expect(verifyKeyFileReplacement(keys.signPublicKey, r, flipped)).toBe(false);
    expect(verifyKeyFileReplacement(keys.signPublicKey, r, sig.subarray(0, 63))).toBe(false);
  });

  it('sign a fixed 121-byte message', () => {
    const m = keyFileReplacementMessage(r);
    expect(m.byteLength).toBe(121);
    expect(Buffer.from(m.subarray(0, 32)).toString()).toBe('kinvault key file replacement v1');
    expect(() => keyFileReplacementMessage({ ...r, repositoryId: new Uint8Array(3) })).toThrow(
      /16 bytes/,
    );
  });
});
