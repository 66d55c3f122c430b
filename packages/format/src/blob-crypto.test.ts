import { describe, expect, it } from 'vitest';
import { blobId, BlobType, openBlob } from './blob.js';
import { inlineBlobCrypto, workerBlobCrypto } from './blob-crypto.js';
import { deriveKeys } from './keys.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('blob-crypto.test');
const keys = deriveKeys(random(32));

describe('blob crypto in worker threads', () => {
  it('gives the same ids as the inline path and seals blobs that open', async () => {
    const pool = workerBlobCrypto(keys, 2);
    const inline = inlineBlobCrypto(keys);
    try {
      const inputs = Array.from({ length: 24 }, (_, i) => random(i * 10_000 + 1));
      const results = await Promise.all(
        inputs.map(async (plain, i) => {
          const type = i % 2 === 0 ? BlobType.data : BlobType.tree;
          const { id, data } = await pool.hash(type, plain.slice());
          const returned = data.slice();
          const sealed = await pool.seal(type, id, data);
          // The pool took ownership: the buffer handed to seal() is now detached.
          expect(data.byteLength).toBe(0);
          return { type, plain, id, returned, sealed };
        }),
      );
      for (const r of results) {
        expect(r.id).toEqual(blobId(keys, r.type, r.plain));
        expect(r.id).toEqual((await inline.hash(r.type, r.plain)).id);
        // Buffer.equals: vitest's deep equality is very slow on large typed arrays.
        expect(Buffer.from(r.returned).equals(r.plain)).toBe(true);
        expect(Buffer.from(openBlob(keys, r.type, r.id, r.sealed)).equals(r.plain)).toBe(true);
      }
    } finally {
      await pool.close();
    }
  });

  it('reports errors from a worker as KinvaultErrors and keeps working', async () => {
    const pool = workerBlobCrypto(keys, 1);
    try {
      await expect(pool.seal(BlobType.data, new Uint8Array(32), new Uint8Array(65 * 1024 * 1024))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      const { id } = await pool.hash(BlobType.data, Uint8Array.of(1, 2, 3));
      expect(id).toEqual(blobId(keys, BlobType.data, Uint8Array.of(1, 2, 3)));
    } finally {
      await pool.close();
    }
  });

  it('fails requests still in flight when the pool closes, instead of hanging', async () => {
    const pool = workerBlobCrypto(keys, 1);
    const pending = pool.hash(BlobType.data, new Uint8Array(64 * 1024 * 1024));
    await pool.close();
    await expect(pending).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(pool.hash(BlobType.data, Uint8Array.of(1))).rejects.toThrow(/closed/);
  });
});
