import { describe, expect, it } from 'vitest';
import {
  BufferPool,
  ByteReader,
  ByteWriter,
  bytesEqual,
  copyInto,
  fromHex,
  toHex,
} from './bytes.js';

describe('ByteWriter and ByteReader', () => {
  it('grow from a tiny buffer without losing or misplacing any field', () => {
    const w = new ByteWriter(1);
    for (let i = 0; i < 200; i++) {
      w.u8(i & 0xff)
        .u16(i * 3)
        .u32(i * 100_003)
        .u64(BigInt(i) * 1_000_000_007n)
        .i64(-BigInt(i) * 3n)
        .bytes(Uint8Array.of(i, i))
        .str16(`é${i}`);
    }
    const r = new ByteReader(w.finish(), 'INVALID_ARGUMENT', 'test');
    for (let i = 0; i < 200; i++) {
      expect([r.u8(), r.u16(), r.u32(), r.u64(), r.i64(), [...r.bytes(2)], r.str16()]).toEqual([
        i & 0xff,
        i * 3,
        i * 100_003,
        i * 1_000_000_007,
        -BigInt(i) * 3n,
        [i, i],
        `é${i}`,
      ]);
    }
    r.end();
  });

  it('BufferPool lends buffers and takes back only what it lent, once', () => {
    const pool = new BufferPool(2, 1024);
    const a = pool.take(300);
    expect(a.byteLength).toBe(300);
    expect(a.buffer.byteLength).toBe(1024);
    expect(BufferPool.lent(a.buffer)).toBe(true);
    pool.give(a);
    pool.give(a); // a second give of the same buffer is ignored
    expect(pool.size).toBe(1);
    expect(BufferPool.lent(a.buffer)).toBe(false);
    const b = pool.take(500);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.take(2000).buffer.byteLength).toBe(2000);
    pool.give(new Uint8Array(4096)); // never lent: ignored
    expect(pool.size).toBe(0);
    pool.give(b);
    expect(pool.size).toBe(1);
    // Small requests get buffers of their own, never pool buffers.
    const small = pool.take(100);
    expect(small.buffer.byteLength).toBe(100);
    expect(BufferPool.lent(small.buffer)).toBe(false);
    // Pool buffers are shared memory (they reach worker threads without moving).
    expect(b.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('bytesEqual compares contents of views at any offset, shared or not', () => {
    const a = Uint8Array.of(9, 1, 2, 3, 9).subarray(1, 4);
    const shared = new Uint8Array(new SharedArrayBuffer(8));
    shared.set([7, 7, 1, 2, 3]);
    expect(bytesEqual(a, Uint8Array.of(1, 2, 3))).toBe(true);
    expect(bytesEqual(a, shared.subarray(2, 5))).toBe(true);
    expect(bytesEqual(shared.subarray(2, 5), a)).toBe(true);
    expect(bytesEqual(a, Uint8Array.of(1, 2, 4))).toBe(false);
    expect(bytesEqual(a, Uint8Array.of(1, 2))).toBe(false);
    expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('copyInto copies exactly the source, to and from shared memory, at any offset', () => {
    const source = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    for (const make of [
      (n: number) => new Uint8Array(n),
      (n: number) => new Uint8Array(new SharedArrayBuffer(n)),
    ]) {
      const target = make(1100).subarray(50);
      copyInto(target, source.subarray(3), 5);
      expect([...target.subarray(0, 5)]).toEqual([0, 0, 0, 0, 0]);
      expect([...target.subarray(5, 1002)]).toEqual([...source.subarray(3)]);
      expect([...target.subarray(1002)]).toEqual(new Array(48).fill(0));
      const back = new Uint8Array(997);
      copyInto(back, target.subarray(5, 1002), 0);
      expect([...back]).toEqual([...source.subarray(3)]);
      expect(() => copyInto(target, source, 100)).toThrow(RangeError);
      copyInto(target, new Uint8Array(0), 1050); // nothing to copy
    }
  });

  it('copy() returns bytes that do not share memory with a Buffer input', () => {
    const input = Buffer.from([1, 2, 3, 4]);
    const copied = new ByteReader(input, 'TREE_INVALID', 'x').copy(4);
    input.fill(9);
    expect([...copied]).toEqual([1, 2, 3, 4]);
  });

  it('keep a leading byte-order mark in text', () => {
    const r = new ByteReader(
      new ByteWriter().str16('\uFEFFnotes.txt').finish(),
      'TREE_INVALID',
      'x',
    );
    expect(r.str16()).toBe('\uFEFFnotes.txt');
  });

  it('refuse integers that do not fit their field instead of wrapping', () => {
    expect(() => new ByteWriter().i64(2n ** 63n)).toThrow(/signed 64-bit/);
    expect(() => new ByteWriter().u64(-1n)).toThrow(/unsigned 64-bit/);
  });

  it('report overruns, trailing bytes, bad UTF-8 and unsafe numbers with the chosen code', () => {
    const r = new ByteReader(Uint8Array.of(1, 2), 'TREE_INVALID', 'Invalid tree');
    expect(() => r.u32()).toThrow(expect.objectContaining({ code: 'TREE_INVALID' }));
    expect(() => new ByteReader(Uint8Array.of(1), 'PACK_CORRUPT', 'x').end()).toThrow(/trailing/);
    expect(() => new ByteReader(Uint8Array.of(1, 0, 0xff), 'TREE_INVALID', 'x').str16()).toThrow(
      /UTF-8/,
    );
    expect(() => new ByteReader(new Uint8Array(8).fill(0xff), 'TREE_INVALID', 'x').u64()).toThrow(
      /too large/,
    );
  });

  it('convert hex both ways and refuse non-hex', () => {
    expect(toHex(fromHex('00ff10'))).toBe('00ff10');
    expect(() => fromHex('0g')).toThrow(/hexadecimal/);
    expect(() => fromHex('abc')).toThrow(/hexadecimal/);
  });
});
