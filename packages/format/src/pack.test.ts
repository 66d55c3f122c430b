import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { asyncCodeOf } from './test-support.js';
import { blobId, BlobType, sealBlob } from './blob.js';
import { deriveKeys } from './keys.js';
import {
  bufferSource,
  buildPack,
  PACK_TRAILER_BYTES,
  readBlob,
  readPackHeader,
  verifyPackHash,
  type RandomAccessSource,
} from './pack.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('pack.test');
const keys = deriveKeys(random(32));

function blobs(count: number, size: number) {
  return Array.from({ length: count }, (_, i) => {
    const type = i % 3 === 0 ? BlobType.tree : BlobType.data;
    const plaintext = random(size + i);
    const id = blobId(keys, type, plaintext);
    return { type, id, plaintext, sealed: sealBlob(keys, type, id, plaintext, random) };
  });
}

describe('packs', () => {
  it('round-trip: header from the tail, each blob by offset, name = SHA-256', async () => {
    const items = blobs(10, 5000);
    const { bytes, info } = await buildPack(keys, items, random);
    expect(info.name).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(info.size).toBe(bytes.byteLength);
    const entries = await readPackHeader(bufferSource(bytes), keys);
    expect(entries).toEqual(info.entries);
    for (const [i, e] of entries.entries()) {
      expect(
        Buffer.from(await readBlob(bufferSource(bytes), keys, e)).equals(items[i]!.plaintext),
      ).toBe(true);
    }
    expect(
      await verifyPackHash([bytes.subarray(0, 7), bytes.subarray(7)], info.name),
    ).toMatchObject({ ok: true, size: bytes.byteLength });
  });

  it('reads only the tail to list a pack', async () => {
    const { bytes } = await buildPack(keys, blobs(5, 100_000), random);
    const reads: [number, number][] = [];
    const source: RandomAccessSource = {
      size: bytes.byteLength,
      read: async (offset, length) => {
        reads.push([offset, length]);
        return bytes.subarray(offset, offset + length);
      },
    };
    await readPackHeader(source, keys);
    expect(reads.length).toBe(2);
    expect(reads[0]).toEqual([bytes.byteLength - PACK_TRAILER_BYTES, PACK_TRAILER_BYTES]);
    expect(reads[1]![1]).toBeLessThan(1000);
  });

  it('a tree for a directory of thousands of files encodes and packs', async () => {
    const { encodeTree, decodeTree } = await import('./tree.js');
    const nodes = Array.from({ length: 5000 }, (_, i) => ({
      kind: 'file' as const,
      name: `IMG_${String(i).padStart(5, '0')}.jpg`,
      mode: 0o644,
      mtimeNs: BigInt(i) * 1_000_000_007n,
      ctimeNs: 0n,
      inode: BigInt(i),
      uid: 501,
      gid: 20,
      size: 3_000_000 + i,
      chunks: [random(32), random(32), random(32)],
    }));
    const bytes = encodeTree({ nodes });
    expect(decodeTree(bytes).nodes).toHaveLength(5000);
    expect(bytes.byteLength).toBeGreaterThan(5000 * 150);
  });

  it('an empty pack is valid', async () => {
    const { bytes } = await buildPack(keys, [], random);
    expect(await readPackHeader(bufferSource(bytes), keys)).toEqual([]);
  });

  it('names what is wrong: truncation, damage, wrong key, newer version', async () => {
    const { bytes, info } = await buildPack(keys, blobs(3, 1000), random);
    expect(await asyncCodeOf(() => readPackHeader(bufferSource(bytes.subarray(0, 10)), keys))).toBe(
      'PACK_TRUNCATED',
    );
    expect(
      await asyncCodeOf(() =>
        readPackHeader(bufferSource(bytes.subarray(0, bytes.byteLength - 1)), keys),
      ),
    ).toBe('PACK_CORRUPT');
    expect(
      await asyncCodeOf(() =>
        readPackHeader(bufferSource(bytes.subarray(info.entries[2]!.offset + 10)), keys),
      ),
    ).toBe('PACK_TRUNCATED');
    expect(
      await asyncCodeOf(() => readPackHeader(bufferSource(bytes), deriveKeys(random(32)))),
    ).toBe('DECRYPT_FAILED');
    const newer = bytes.slice();
    newer[bytes.byteLength - 12] = 2;
    expect(await asyncCodeOf(() => readPackHeader(bufferSource(newer), keys))).toBe(
      'PACK_UNSUPPORTED',
    );
    const flipped = bytes.slice();
    flipped[info.entries[1]!.offset + 30]! ^= 4;
    expect(await asyncCodeOf(() => readBlob(bufferSource(flipped), keys, info.entries[1]!))).toBe(
      'DECRYPT_FAILED',
    );
    expect((await verifyPackHash([flipped], info.name)).ok).toBe(false);
    const swapped = { ...info.entries[1]!, id: info.entries[0]!.id };
    expect(await asyncCodeOf(() => readBlob(bufferSource(bytes), keys, swapped))).toBe(
      'DECRYPT_FAILED',
    );
    const pastEnd = { ...info.entries[1]!, offset: bytes.byteLength };
    expect(await asyncCodeOf(() => readBlob(bufferSource(bytes), keys, pastEnd))).toBe(
      'PACK_TRUNCATED',
    );
  });

  it('a data blob presented as a tree blob does not open', async () => {
    const [item] = blobs(2, 100).filter((b) => b.type === BlobType.data);
    const { bytes, info } = await buildPack(keys, [item!], random);
    expect(
      await asyncCodeOf(() =>
        readBlob(bufferSource(bytes), keys, { ...info.entries[0]!, type: BlobType.tree }),
      ),
    ).toBe('DECRYPT_FAILED');
  });
});
