import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blobId, BlobType } from './blob.js';
import {
  inlineBlobPacker,
  workerBlobPacker,
  type BlobPacker,
  type BlobPackerOptions,
  type OpenPackSink,
  type PackSink,
} from './blob-packer.js';
import { BufferPool, toHex } from './bytes.js';
import { chunkBuffer, chunkStream, prepareChunker } from './chunker.js';
import { deriveKeys, gearTable } from './keys.js';
import { bufferSource, readBlob, readPackHeader, type PackInfo } from './pack.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('blob-packer.test');
const keys = deriveKeys(random(32));

/** Sinks that keep every finished pack in memory, keyed by name. */
function memorySinks() {
  const packs = new Map<string, Buffer>();
  let aborted = 0;
  const open: OpenPackSink = () => {
    const parts: Uint8Array[] = [];
    return {
      write: (b) => void parts.push(Buffer.from(b)),
      close: async (info: PackInfo) => void packs.set(info.name, Buffer.concat(parts)),
      abort: async () => void aborted++,
    };
  };
  return { packs, open, aborted: () => aborted };
}

type Maker = (open: OpenPackSink, target: number, extra?: BlobPackerOptions) => BlobPacker;
const makers: [string, Maker][] = [
  ['inline', (open, target, extra) => inlineBlobPacker(keys, open, { target, random, ...extra })],
  [
    'worker threads',
    (open, target, extra) => workerBlobPacker(keys, open, { target, threads: 2, ...extra }),
  ],
];

describe.each(makers)('blob packer (%s)', (name, make) => {
  it('hashes, seals and packs; every pack is valid and holds what was sealed', async () => {
    const sinks = memorySinks();
    const packer = make(sinks.open, 200_000);
    try {
      const inputs = Array.from({ length: 40 }, (_, i) => random(10_000 + i * 997));
      const held = await Promise.all(
        inputs.map((d, i) => packer.hash(i % 5 === 0 ? BlobType.tree : BlobType.data, d.slice())),
      );
      held.forEach((h, i) => {
        expect(h.id).toEqual(blobId(keys, h.type, inputs[i]!));
        expect(h.size).toBe(inputs[i]!.byteLength);
      });
      // Drop every fourth blob (as if the coordinator had it already).
      const infos: PackInfo[] = [];
      await Promise.all(
        held.map(async (h, i) => {
          if (i % 4 === 3) return packer.drop(h);
          const info = await packer.seal(h);
          if (info) infos.push(info);
        }),
      );
      infos.push(...(await packer.flush()));
      expect(await packer.flush()).toEqual([]);
      expect(infos.length).toBeGreaterThanOrEqual(2);
      expect([...sinks.packs.keys()].sort()).toEqual(infos.map((i) => i.name).sort());
      const found = new Map<string, Uint8Array>();
      for (const info of infos) {
        const bytes = sinks.packs.get(info.name)!;
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(info.name);
        expect(info.size).toBe(bytes.byteLength);
        const entries = await readPackHeader(bufferSource(bytes), keys);
        expect(entries).toEqual(info.entries);
        for (const e of entries)
          found.set(
            Buffer.from(e.id).toString('hex'),
            await readBlob(bufferSource(bytes), keys, e),
          );
      }
      expect(found.size).toBe(30);
      held.forEach((h, i) => {
        const got = found.get(Buffer.from(h.id).toString('hex'));
        if (i % 4 === 3) expect(got).toBeUndefined();
        else expect(Buffer.from(got!).equals(inputs[i]!)).toBe(true);
      });
    } finally {
      await packer.close();
    }
  });

  it('reuses chunk buffers through a pool without corrupting any blob', async () => {
    const data = deterministicRandom('blob-packer pool')(12 * 1024 * 1024);
    const params = { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 };
    const chunker = prepareChunker(gearTable(keys.cdcSeed), params);
    const expected = new Map(
      chunkBuffer(data, chunker).map((c) => [toHex(blobId(keys, BlobType.data, c.data)), c.data]),
    );
    const pool = new BufferPool(8, 256 * 1024);
    let reused = 0;
    const sinks = memorySinks();
    const packer = make(sinks.open, 1024 * 1024, { recycle: (b) => pool.give(b) });
    try {
      const pieces = (function* () {
        for (let at = 0; at < data.byteLength; at += 100_000) yield data.subarray(at, at + 100_000);
      })();
      const sealing: Promise<unknown>[] = [];
      const allocate = (n: number) => {
        if (pool.size > 0) reused++;
        return pool.take(n);
      };
      // Hash a batch, then seal it (as the agent does around its dedup query): buffers
      // recycled too early would be overwritten by later chunks of the batch.
      let batch: Promise<Awaited<ReturnType<BlobPacker['hash']>>>[] = [];
      const sealBatch = async () => {
        for (const held of await Promise.all(batch)) sealing.push(packer.seal(held));
        batch = [];
        await Promise.all(sealing);
      };
      for await (const chunk of chunkStream(pieces, chunker, { allocate })) {
        batch.push(packer.hash(BlobType.data, chunk.data));
        if (batch.length === 8) await sealBatch();
      }
      await sealBatch();
      await packer.flush();
      expect(reused).toBeGreaterThan(50);
      let blobs = 0;
      for (const bytes of sinks.packs.values()) {
        for (const e of await readPackHeader(bufferSource(bytes), keys)) {
          const plain = await readBlob(bufferSource(bytes), keys, e);
          expect(Buffer.from(plain).equals(expected.get(toHex(e.id))!)).toBe(true);
          blobs++;
        }
      }
      expect(blobs).toBe(expected.size);
    } finally {
      await packer.close();
    }
  });

  it("gives dropped blobs' buffers back to the pool (runs that find everything stored)", async () => {
    const pool = new BufferPool(8, 64 * 1024);
    const packer = make(memorySinks().open, 1_000_000, { recycle: (b) => pool.give(b) });
    try {
      const data = pool.take(10_000);
      data.set(random(10_000));
      packer.drop(await packer.hash(BlobType.data, data));
      for (let i = 0; i < 100 && pool.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(pool.size).toBe(1);
    } finally {
      await packer.close();
    }
  });

  it('never stores a pack after a failed write, even with seals in flight', async () => {
    for (const failure of ['write', 'open'] as const) {
      let written = 0;
      let opens = 0;
      const closed: string[] = [];
      // The write that goes past the first blob fails: the inline packer writes blob
      // by blob, the worker packer the whole pack once it is complete.
      const packer = make(async () => {
        if (failure === 'open' && opens++ === 0) throw new Error('transient: ECONNRESET');
        return {
          write: () => {},
          writev: (parts) => {
            for (const p of parts) written += p.byteLength;
            if (failure === 'write' && written > 3100) throw new Error('transient: ECONNRESET');
          },
          close: async (info) => void closed.push(info.name),
        };
      }, 9000);
      try {
        const held = await Promise.all(
          [1, 2, 3].map(() => packer.hash(BlobType.data, random(3000))),
        );
        const results = await Promise.allSettled(held.map((h) => packer.seal(h)));
        expect(results.filter((r) => r.status === 'fulfilled' && r.value !== null)).toEqual([]);
        // The inline packer fails while sealing; the worker packer writes nothing before
        // a pack is complete, and none is here (three blobs over two threads).
        if (name === 'inline') expect(results.some((r) => r.status === 'rejected')).toBe(true);
        expect(closed).toEqual([]);
        await expect(packer.flush()).rejects.toThrow(/ECONNRESET/);
      } finally {
        await packer.close();
      }
    }
  });

  it('reports a refused blob as a KinvaultError', async () => {
    const packer = make(memorySinks().open, 1000);
    try {
      const held = await packer.hash(BlobType.data, new Uint8Array(64 * 1024 * 1024 + 1));
      await expect(packer.seal(held)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await packer.close();
    }
  });

  it('breaks on a failed sink write: later calls fail, nothing hangs', async () => {
    let written = 0;
    const packer = make(
      () => ({
        write: () => {},
        // Past the first blob the disk is full: the inline packer fails sealing the
        // second blob, the worker packer (whole packs) at the flush.
        writev: (parts) => {
          for (const p of parts) written += p.byteLength;
          if (written > 1100) throw new Error('disk full');
        },
        close: async () => {},
      }),
      1_000_000,
    );
    try {
      const a = await packer.hash(BlobType.data, random(1000));
      const b = await packer.hash(BlobType.data, random(1000));
      await packer.seal(a);
      await expect(packer.seal(b).then(() => packer.flush())).rejects.toThrow(/disk full/);
      await expect(packer.hash(BlobType.data, random(10))).rejects.toThrow(/disk full/);
    } finally {
      await packer.close();
    }
  });
});

describe('worker blob packer', () => {
  it('closes safely while its threads are still loading their modules', async () => {
    // Terminating a thread during libsodium's top-level await aborted the process.
    for (let i = 0; i < 20; i++) {
      const packer = workerBlobPacker(keys, memorySinks().open, { threads: 2 });
      await new Promise((r) => setTimeout(r, i * 5));
      await packer.close();
    }
    await expect(
      workerBlobPacker(keys, memorySinks().open, { threads: 1 }).flush(),
    ).resolves.toEqual([]);
  });

  it('fails requests in flight when it is closed, instead of hanging', async () => {
    const packer = workerBlobPacker(keys, memorySinks().open, { threads: 1 });
    const pending = packer.hash(BlobType.data, new Uint8Array(64 * 1024 * 1024));
    await packer.close();
    await expect(pending).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(packer.hash(BlobType.data, Uint8Array.of(1))).rejects.toThrow(/closed/);
  });

  it('copies views that share a buffer instead of detaching it under another holder', async () => {
    const packer = workerBlobPacker(keys, memorySinks().open, { threads: 1 });
    try {
      const shared = random(20_000);
      const a = shared.subarray(0, 10_000);
      const b = shared.subarray(10_000);
      const [ha, hb] = await Promise.all([
        packer.hash(BlobType.data, a),
        packer.hash(BlobType.data, b),
      ]);
      expect(ha.id).toEqual(blobId(keys, BlobType.data, shared.subarray(0, 10_000)));
      expect(hb.id).toEqual(blobId(keys, BlobType.data, shared.subarray(10_000)));
      expect(shared.byteLength).toBe(20_000);
    } finally {
      await packer.close();
    }
  });

  it('moves large buffers to the worker and copies small ones into one message', async () => {
    const packer = workerBlobPacker(keys, memorySinks().open, { threads: 1 });
    try {
      const large = random(100_000);
      const small = [random(5000), random(7000)];
      const held = await Promise.all([large, ...small].map((d) => packer.hash(BlobType.data, d)));
      expect(large.byteLength).toBe(0); // transferred
      expect(small.map((d) => d.byteLength)).toEqual([5000, 7000]); // copied
      expect(held[1]!.id).toEqual(blobId(keys, BlobType.data, small[0]!));
      expect(held[2]!.id).toEqual(blobId(keys, BlobType.data, small[1]!));
    } finally {
      await packer.close();
    }
  });

  it('shows pooled buffers to the worker without moving them; packs arrive whole', async () => {
    const pool = new BufferPool(8, 256 * 1024);
    const recycled: Uint8Array[] = [];
    const sinks = memorySinks();
    const writes: number[] = [];
    const packer = workerBlobPacker(
      keys,
      () => {
        const sink = sinks.open() as PackSink;
        return { ...sink, write: (b: Uint8Array) => (writes.push(b.byteLength), sink.write(b)) };
      },
      { threads: 1, target: 300_000, recycle: (b) => recycled.push(b) },
    );
    try {
      const data = pool.take(200_000);
      data.set(random(200_000));
      const expected = blobId(keys, BlobType.data, data);
      const held = await packer.hash(BlobType.data, data);
      expect(data.byteLength).toBe(200_000); // shared, not transferred
      expect(held.id).toEqual(expected);
      const other = pool.take(150_000);
      other.set(random(150_000));
      await packer.seal(held);
      expect(recycled).toEqual([data]);
      expect(writes).toEqual([]); // the pack is not complete yet
      const info = await packer.seal(await packer.hash(BlobType.data, other));
      expect(recycled).toEqual([data, other]);
      expect(writes).toEqual([info!.size]); // one write: the whole pack
      const bytes = sinks.packs.get(info!.name)!;
      const entries = await readPackHeader(bufferSource(bytes), keys);
      expect(entries.map((e) => toHex(e.id))).toEqual([
        toHex(expected),
        toHex(info!.entries[1]!.id),
      ]);
      expect(await readBlob(bufferSource(bytes), keys, entries[0]!)).toEqual(new Uint8Array(data));
    } finally {
      await packer.close();
    }
  });
});
