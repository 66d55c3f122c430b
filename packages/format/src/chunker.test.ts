import { describe, expect, it } from 'vitest';
import {
  chunkBuffer,
  chunkSource,
  chunkStream,
  findBoundary,
  prepareChunker,
  type ChunkerParams,
  DEFAULT_CHUNKER_PARAMS,
} from './chunker.js';
import { gearTable } from './keys.js';
import { deterministicRandom } from './random.js';

const small: ChunkerParams = { minSize: 2048, avgSize: 8192, maxSize: 32768 };
const gear = gearTable(new Uint8Array(32).fill(1));

/** The cut-point rule written as plainly as docs/design.md states it, one byte per step. */
function referenceBoundary(
  p: ChunkerParams,
  table: Uint32Array,
  b: Uint8Array,
  start: number,
  end: number,
): number {
  const n = end - start;
  if (n <= p.minSize) return end;
  const bits = Math.log2(p.avgSize);
  const maskS = (2 ** (bits + 2) - 1) * 2 ** (31 - bits - 2);
  const maskL = (2 ** (bits - 2) - 1) * 2 ** (31 - bits + 2);
  const normal = start + Math.min(n, p.avgSize);
  const limit = start + Math.min(n, p.maxSize);
  let h = 0;
  for (let i = start + p.minSize; i < limit; i++) {
    h = (h * 2 + table[b[i]!]!) % 2 ** 32;
    const mask = i < normal ? maskS : maskL;
    if ((h & mask) === 0) return i + 1;
  }
  return limit;
}

async function collect(
  pieces: Iterable<Uint8Array>,
  params: ChunkerParams,
): Promise<[number, number][]> {
  const out: [number, number][] = [];
  for await (const c of chunkStream(pieces, prepareChunker(gear, params)))
    out.push([c.offset, c.data.byteLength]);
  return out;
}

function* split(data: Uint8Array, random: (n: number) => Uint8Array): Generator<Uint8Array> {
  let at = 0;
  while (at < data.byteLength) {
    const n = 1 + ((random(2)[0]! << 8) | random(1)[0]!) * 3;
    yield data.subarray(at, at + n);
    at += n;
  }
}

describe('FastCDC chunker', () => {
  const random = deterministicRandom('chunker.test');
  const data = random(3 * 1024 * 1024 + 123);

  it('matches the one-byte-per-step reference definition', () => {
    const c = prepareChunker(gear, small);
    let start = 0;
    let count = 0;
    while (start < data.byteLength) {
      const cut = findBoundary(c, data, start, data.byteLength);
      expect(cut).toBe(referenceBoundary(small, gear, data, start, data.byteLength));
      start = cut;
      count++;
    }
    expect(count).toBeGreaterThan(200);
  });

  it('finds the same boundaries however the stream is split into pieces', async () => {
    const whole = chunkBuffer(data, prepareChunker(gear, small)).map((c) => [
      c.offset,
      c.data.byteLength,
    ]);
    expect(await collect([data], small)).toEqual(whole);
    expect(await collect(split(data, deterministicRandom('split-1')), small)).toEqual(whole);
    expect(await collect(split(data, deterministicRandom('split-2')), small)).toEqual(whole);
  });

  it('streams (WebAssembly) exactly as the JavaScript reference cuts, at default sizes', async () => {
    const big = deterministicRandom('chunker.test big')(24 * 1024 * 1024);
    const whole = chunkBuffer(big, prepareChunker(gear)).map((c) => [c.offset, c.data.byteLength]);
    expect(whole.length).toBeGreaterThan(12);
    expect(
      await collect(split(big, deterministicRandom('split-3')), DEFAULT_CHUNKER_PARAMS),
    ).toEqual(whole);
  });

  it('chunks exactly the same when the source is far larger than its size hint', async () => {
    const big = deterministicRandom('chunker.test hint')(20 * 1024 * 1024);
    const whole = chunkBuffer(big, prepareChunker(gear)).map((c) => [c.offset, c.data.byteLength]);
    for (const sizeHint of [0, 1000, 300_000, 5_000_000]) {
      const got: [number, number][] = [];
      for await (const c of chunkStream(
        split(big, deterministicRandom(`hint ${sizeHint}`)),
        prepareChunker(gear),
        { sizeHint },
      )) {
        got.push([c.offset, c.data.byteLength]);
      }
      expect(got, `hint ${sizeHint}`).toEqual(whole);
    }
    const tiny: number[] = [];
    for await (const c of chunkStream([big.subarray(0, 5000)], prepareChunker(gear), {
      sizeHint: 5000,
    }))
      tiny.push(c.data.byteLength);
    expect(tiny).toEqual([5000]);
  });

  it('keeps every chunk within min..max, except a short final one, and loses no byte', async () => {
    const chunks = await collect([data], small);
    let total = 0;
    chunks.forEach(([offset, length], i) => {
      expect(offset).toBe(total);
      total += length;
      expect(length).toBeLessThanOrEqual(small.maxSize);
      if (i < chunks.length - 1) expect(length).toBeGreaterThan(small.minSize);
    });
    expect(total).toBe(data.byteLength);
    const mean = total / chunks.length;
    expect(mean).toBeGreaterThan(small.avgSize * 0.6);
    expect(mean).toBeLessThan(small.avgSize * 1.6);
  });

  it('resynchronises after an insertion near the start (content-defined)', async () => {
    const shifted = new Uint8Array(data.byteLength + 100);
    shifted.set(random(100));
    shifted.set(data, 100);
    const a = new Set((await collect([data], small)).map(([o, l]) => `${o + 100}:${l}`));
    const b = await collect([shifted], small);
    const shared = b.filter(([o, l]) => a.has(`${o}:${l}`)).length;
    expect(shared / b.length).toBeGreaterThan(0.95);
  });

  it('depends on the repository seed', async () => {
    const other = gearTable(new Uint8Array(32).fill(2));
    const mine = chunkBuffer(data, prepareChunker(gear, small)).map((c) => c.data.byteLength);
    const theirs = chunkBuffer(data, prepareChunker(other, small)).map((c) => c.data.byteLength);
    expect(theirs).not.toEqual(mine);
  });

  it('cuts zero-filled and tiny input sensibly', async () => {
    expect(await collect([], small)).toEqual([]);
    expect(await collect([new Uint8Array(0)], small)).toEqual([]);
    expect(await collect([new Uint8Array(5)], small)).toEqual([[0, 5]]);
    const zeros = await collect([new Uint8Array(100_000)], small);
    expect(zeros.reduce((s, [, l]) => s + l, 0)).toBe(100_000);
    for (const [, l] of zeros.slice(0, -1)) expect(l).toBeLessThanOrEqual(small.maxSize);
  });

  it('uses 512 KiB / 1 MiB / 8 MiB by default and refuses bad sizes', () => {
    expect(DEFAULT_CHUNKER_PARAMS).toEqual({
      minSize: 512 * 1024,
      avgSize: 1024 * 1024,
      maxSize: 8 * 1024 * 1024,
    });
    expect(() => prepareChunker(gear, { minSize: 100, avgSize: 1000, maxSize: 5000 })).toThrow(
      /power of two/,
    );
    expect(() => prepareChunker(gear, { minSize: 4096, avgSize: 4096, maxSize: 5000 })).toThrow(
      /min < avg/,
    );
    expect(() => prepareChunker(gear, { minSize: 64, avgSize: 4096, maxSize: 4096 })).toThrow(
      /max > avg/,
    );
  });

  it('reports a failing read to the caller, even when it fails while chunks are handed out', async () => {
    let reads = 0;
    const source = {
      read: async (into: Uint8Array) => {
        // Short reads keep a read-ahead outstanding while chunks are handed out.
        if (++reads === 12) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        const n = Math.min(into.byteLength, 10_000);
        into.set(data.subarray(reads * 10_000, reads * 10_000 + n));
        return n;
      },
    };
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const c of chunkSource(source, prepareChunker(gear, small))) {
          seen.push(c.data.byteLength);
          await new Promise((r) => setTimeout(r, 1)); // the read-ahead fails meanwhile
        }
      })(),
    ).rejects.toThrow(/EIO/);
    expect(seen.length).toBeGreaterThan(0);
  });
});
