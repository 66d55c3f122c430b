/**
 * Small byte helpers and a bounds-checked reader used by every decoder.
 *
 * Contract: `ByteReader` never reads past its end and never allocates more than the
 * bytes it was given; a short or malformed input becomes a `KinvaultError` with the
 * code the caller chose (so a tree decoder reports TREE_INVALID, a pack reader
 * PACK_CORRUPT).
 */
import { KinvaultError, type ErrorCode } from '@kinvault/protocol';

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) {
    throw new KinvaultError('INVALID_ARGUMENT', `Not a hexadecimal string: "${hex.slice(0, 80)}".`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * A copy of `src` in a fresh, unpooled buffer of its own (safe to keep or transfer).
 * Skips the zero-fill of `new Uint8Array(n)`, which is measurable on 1 MiB chunks.
 */
export function copyBytes(src: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafeSlow(src.byteLength);
  copyInto(out, src, 0);
  return out;
}

/**
 * `target.set(source, at)`, at memcpy speed even when either side is shared memory:
 * V8 copies SharedArrayBuffer contents word by word with relaxed atomics (about 12×
 * slower than memcpy for 1 MiB here), while Buffer's native `fill` with a value exactly
 * as long as the range is one memcpy.
 */
export function copyInto(target: Uint8Array, source: Uint8Array, at: number): void {
  const n = source.byteLength;
  if (n === 0) return;
  if (at < 0 || at + n > target.byteLength) throw new RangeError('copyInto: out of range');
  if (
    !(target.buffer instanceof SharedArrayBuffer) &&
    !(source.buffer instanceof SharedArrayBuffer)
  ) {
    target.set(source, at);
    return;
  }
  const t = Buffer.isBuffer(target)
    ? target
    : Buffer.from(target.buffer, target.byteOffset, target.byteLength);
  t.fill(source, at, at + n);
}

/** An unpooled, uninitialised buffer that the caller fills completely. */
export function allocBytes(n: number): Uint8Array {
  return Buffer.allocUnsafeSlow(n);
}

/**
 * Reusable chunk buffers. A fresh 1 MiB buffer costs about five times its copy here
 * (page faults on first touch), so the chunker takes buffers from a pool and the
 * blob packer gives them back once a chunk is sealed.
 *
 * Pooled buffers are SharedArrayBuffers: they reach worker threads shared, not moved.
 * Every ArrayBuffer that arrives by transfer counts as newly allocated external memory
 * in the receiving thread, and each 64 MiB of that starts a full garbage collection
 * (a backup's chunks used to cost one every 300 ms); shared memory is not counted.
 *
 * Contract: `give` only buffers nobody else still uses (a worker that was shown one
 * must be done with it). A given view's whole buffer goes back to the pool.
 */
export class BufferPool {
  /** Buffers currently lent out by some pool: only these come back, once each. */
  private static readonly out = new WeakSet<SharedArrayBuffer>();
  private readonly free: SharedArrayBuffer[] = [];

  constructor(
    private readonly maxBuffers = 64,
    private readonly minCapacity = 2 * 1024 * 1024,
  ) {}

  /** True while `buffer` is lent by a pool. */
  static lent(buffer: ArrayBufferLike): boolean {
    return buffer instanceof SharedArrayBuffer && BufferPool.out.has(buffer);
  }

  /**
   * A view of exactly n bytes, over a pooled buffer when one is large enough. Small
   * requests (under 1/8 of the pool's buffer size) get a fresh buffer of their own:
   * lending 2 MiB for a 4 kB note would only feed the garbage collector.
   */
  take(n: number): Uint8Array {
    if (n < this.minCapacity / 8) return Buffer.allocUnsafeSlow(n);
    let sab: SharedArrayBuffer | undefined;
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i]!.byteLength >= n) {
        sab = this.free[i]!;
        this.free[i] = this.free[this.free.length - 1]!;
        this.free.pop();
        break;
      }
    }
    sab ??= new SharedArrayBuffer(Math.max(n, this.minCapacity));
    BufferPool.out.add(sab);
    // A Buffer view: `copyInto` fills it without making a view per copy.
    return Buffer.from(sab, 0, n);
  }

  /** Takes back a buffer this or another pool lent; anything else is ignored. */
  give(view: Uint8Array): void {
    const sab = view.buffer;
    if (!(sab instanceof SharedArrayBuffer) || !BufferPool.out.has(sab)) return;
    BufferPool.out.delete(sab);
    if (this.free.length < this.maxBuffers) this.free.push(sab);
  }

  get size(): number {
    return this.free.length;
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Equal contents (memcmp; not constant-time: compare nothing secret with it). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

const utf8 = new TextEncoder();
// ignoreBOM: a name may legitimately start with U+FEFF; it must survive a round trip.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeUtf8(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Appends little-endian fields to a growing buffer. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.buf.byteLength) {
      const next = new Uint8Array(Math.max(this.buf.byteLength * 2, at + n));
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.len += n;
    return at;
  }

  // Each setter reserves first: reserve() may replace this.buf and this.view.
  u8(v: number): this {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
    return this;
  }
  u32(v: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
    return this;
  }
  u64(v: bigint | number): this {
    const big = BigInt(v);
    if (big < 0n || big > 0xffff_ffff_ffff_ffffn) {
      throw new KinvaultError('INVALID_ARGUMENT', `${big} does not fit an unsigned 64-bit field.`);
    }
    const at = this.reserve(8);
    this.view.setBigUint64(at, big, true);
    return this;
  }
  i64(v: bigint): this {
    if (v < -(2n ** 63n) || v >= 2n ** 63n) {
      throw new KinvaultError('INVALID_ARGUMENT', `${v} does not fit a signed 64-bit field.`);
    }
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this.reserve(b.byteLength);
    this.buf.set(b, at);
    return this;
  }
  /** u16 length followed by UTF-8 bytes; `what` names the field in errors. */
  str16(text: string, what = 'A text field'): this {
    const b = utf8.encode(text);
    if (b.byteLength > 0xffff) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `${what} is ${b.byteLength} bytes of UTF-8; the limit is 65535. Shorten it (callers truncate long messages before encoding).`,
      );
    }
    return this.u16(b.byteLength).bytes(b);
  }
  get length(): number {
    return this.len;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Reads little-endian fields; any overrun throws `KinvaultError(code)`. */
export class ByteReader {
  private readonly view: DataView;
  private at = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly code: ErrorCode,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(reason: string): never {
    throw new KinvaultError(this.code, `${this.what}: ${reason} (at byte ${this.at}).`, {
      details: { offset: this.at },
    });
  }

  private take(n: number): number {
    if (n < 0 || this.at + n > this.buf.byteLength) {
      this.fail(`needs ${n} more bytes but only ${this.buf.byteLength - this.at} remain`);
    }
    const at = this.at;
    this.at += n;
    return at;
  }

  get offset(): number {
    return this.at;
  }
  get remaining(): number {
    return this.buf.byteLength - this.at;
  }
  u8(): number {
    return this.view.getUint8(this.take(1));
  }
  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  /** u64 that must fit a JavaScript safe integer. */
  u64(): number {
    const v = this.view.getBigUint64(this.take(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`number ${v} is too large`);
    return Number(v);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.take(8), true);
  }
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.subarray(at, at + n);
  }
  /** n bytes in a buffer of their own (a Buffer's slice() would share memory). */
  copy(n: number): Uint8Array {
    return new Uint8Array(this.bytes(n));
  }
  str16(): string {
    const raw = this.bytes(this.u16());
    try {
      return utf8Strict.decode(raw);
    } catch {
      return this.fail('text is not valid UTF-8');
    }
  }
  /** Throws unless every byte has been consumed. */
  end(): void {
    if (this.at !== this.buf.byteLength) this.fail(`${this.remaining} unexpected trailing bytes`);
  }
}
