import { describe, expect, it } from 'vitest';
import { isKinvaultError } from '@kinvault/protocol';
import {
  nativeAvailable,
  openNative,
  openReference,
  sealNative,
  sealReference,
  SEAL_OVERHEAD,
} from './aead.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('aead.test');

describe('XChaCha20-Poly1305 fast path', () => {
  it('is available on this Node build', () => {
    expect(nativeAvailable).toBe(true);
  });

  it('produces the same bytes as libsodium for many lengths and associated data', () => {
    for (const length of [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096, 65_537, 1_048_576 + 3]) {
      const key = random(32);
      const nonce = random(24);
      const plaintext = random(length);
      const ad = random(length % 50);
      const fast = sealNative(key, nonce, plaintext, ad);
      const reference = sealReference(key, nonce, plaintext, ad);
      expect(Buffer.from(fast).equals(Buffer.from(reference))).toBe(true);
      expect(fast.byteLength).toBe(length + SEAL_OVERHEAD);
      expect(Buffer.from(openNative(key, reference, ad)).equals(Buffer.from(plaintext))).toBe(true);
      expect(Buffer.from(openReference(key, fast, ad)).equals(Buffer.from(plaintext))).toBe(true);
    }
  });

  it('refuses a flipped bit, a wrong key, wrong associated data and short input', () => {
    const key = random(32);
    const sealed = sealNative(key, random(24), random(300), Uint8Array.of(1, 2, 3));
    const cases: [string, () => unknown][] = [];
    for (const at of [0, 23, 24, 100, sealed.byteLength - 1]) {
      const bad = sealed.slice();
      bad[at]! ^= 0x01;
      cases.push([`bit at ${at}`, () => openNative(key, bad, Uint8Array.of(1, 2, 3))]);
      cases.push([`reference bit at ${at}`, () => openReference(key, bad, Uint8Array.of(1, 2, 3))]);
    }
    cases.push(['wrong key', () => openNative(random(32), sealed, Uint8Array.of(1, 2, 3))]);
    cases.push(['wrong ad', () => openNative(key, sealed, Uint8Array.of(1, 2, 4))]);
    cases.push(['short', () => openNative(key, sealed.subarray(0, 39))]);
    cases.push(['reference short', () => openReference(key, sealed.subarray(0, 10))]);
    for (const [name, run] of cases) {
      let caught: unknown;
      try {
        run();
      } catch (e) {
        caught = e;
      }
      expect(isKinvaultError(caught, 'DECRYPT_FAILED'), name).toBe(true);
    }
  });

  it('rejects keys and nonces of the wrong size', () => {
    expect(() => sealNative(new Uint8Array(31), new Uint8Array(24), new Uint8Array(1))).toThrow(
      /32 bytes/,
    );
    expect(() => sealNative(new Uint8Array(32), new Uint8Array(12), new Uint8Array(1))).toThrow(
      /24 bytes/,
    );
  });
});
