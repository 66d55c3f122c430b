import { describe, expect, it } from 'vitest';
import { asyncCodeOf } from './test-support.js';
import {
  CATALOG_FRAME_PLAINTEXT,
  openCatalog,
  openCatalogBytes,
  sealCatalog,
  sealCatalogBytes,
} from './catalog.js';
import { deriveKeys } from './keys.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('catalog.test');
const keys = deriveKeys(random(32));

describe('sealed catalogs', () => {
  it('are opened by the household key pair, for empty, small and multi-frame catalogs', async () => {
    for (const size of [0, 1, 1000, CATALOG_FRAME_PLAINTEXT, CATALOG_FRAME_PLAINTEXT * 2 + 17]) {
      const plain = random(size);
      const sealed = await sealCatalogBytes(keys.boxPublicKey, plain);
      expect(
        Buffer.from(await openCatalogBytes(keys.boxPublicKey, keys.boxSecretKey, sealed)).equals(
          Buffer.from(plain),
        ),
      ).toBe(true);
    }
  });

  it('stream in pieces of any size both ways', async () => {
    const plain = random(2_500_000);
    const pieces = [plain.subarray(0, 3), plain.subarray(3, 1_500_000), plain.subarray(1_500_000)];
    const sealedParts: Uint8Array[] = [];
    for await (const p of sealCatalog(keys.boxPublicKey, pieces)) sealedParts.push(p);
    const sealed = Buffer.concat(sealedParts);
    const byteAtATime = (function* () {
      for (let i = 0; i < sealed.byteLength; i += 4099) yield sealed.subarray(i, i + 4099);
    })();
    const out: Uint8Array[] = [];
    for await (const p of openCatalog(keys.boxPublicKey, keys.boxSecretKey, byteAtATime))
      out.push(p);
    expect(Buffer.concat(out).equals(Buffer.from(plain))).toBe(true);
  });

  it('detect truncation, extra bytes, damage and the wrong household', async () => {
    const sealed = await sealCatalogBytes(keys.boxPublicKey, random(CATALOG_FRAME_PLAINTEXT + 10));
    const open = (b: Uint8Array, k = keys) => openCatalogBytes(k.boxPublicKey, k.boxSecretKey, b);
    expect(await asyncCodeOf(() => open(sealed.subarray(0, sealed.byteLength - 1)))).toBe(
      'CATALOG_INVALID',
    );
    expect(
      await asyncCodeOf(() =>
        open(sealed.subarray(0, 9 + 80 + 24 + 4 + CATALOG_FRAME_PLAINTEXT + 17)),
      ),
    ).toBe('CATALOG_INVALID');
    expect(await asyncCodeOf(() => open(Buffer.concat([sealed, Uint8Array.of(0)])))).toBe(
      'CATALOG_INVALID',
    );
    const flipped = Buffer.from(sealed);
    flipped[200]! ^= 1;
    expect(await asyncCodeOf(() => open(flipped))).toBe('CATALOG_INVALID');
    expect(await asyncCodeOf(() => open(sealed, deriveKeys(random(32))))).toBe('CATALOG_INVALID');
    const frameLength = Buffer.from(sealed);
    frameLength.writeUInt32LE(0xffffffff, 9 + 80 + 24);
    expect(await asyncCodeOf(() => open(frameLength))).toBe('CATALOG_INVALID');
    expect(await asyncCodeOf(() => open(new Uint8Array(0)))).toBe('CATALOG_INVALID');
  });
});
