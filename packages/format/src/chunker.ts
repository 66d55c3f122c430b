/**
 * Content-defined chunking: FastCDC with normalized chunking (level 2) and a 32-bit
 * gear hash whose table is seeded per repository (see `gearTable` in keys.ts).
 *
 * Definition (format v1; docs/design.md has the same in prose):
 *   bits  = log2(avgSize);  maskS = ones(bits + 2) << (31 - bits - 2);
 *                           maskL = ones(bits - 2) << (31 - bits + 2)
 *   (the mask bits are the highest ones below bit 31, so they depend on the last 31 bytes)
 *   A chunk starting at s ends at the first i in [s+min, s+min(avg, n)) with
 *   h_i & maskS == 0, else the first i in [s+avg, s+min(max, n)) with h_i & maskL == 0,
 *   else at s+min(max, n); the chunk includes byte i. h starts at 0 at s+min and
 *   h_i = (2·h_{i-1} + gear[b_i]) mod 2^32. Chunks of n <= min bytes end the stream.
 *
 * Contract: boundaries depend only on the bytes and the table, never on how the
 * stream was split into pieces; memory stays at two times maxSize.
 */
import { KinvaultError } from '@kinvault/protocol';
import { MAX_BLOB_PLAINTEXT } from './blob.js';
import { GEAR_SCAN_WASM } from './gear-scan.wasm.js';
import { allocBytes, copyInto } from './bytes.js';

export interface ChunkerParams {
  readonly minSize: number;
  readonly avgSize: number;
  readonly maxSize: number;
}

export const DEFAULT_CHUNKER_PARAMS: ChunkerParams = Object.freeze({
  minSize: 512 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 8 * 1024 * 1024,
});

export interface Chunk {
  /** Offset of the chunk's first byte in the stream. */
  readonly offset: number;
  /**
   * The chunk's bytes: a buffer of its own by default (safe to keep or transfer); with
   * `allocate` (e.g. a BufferPool), what that returned, owned by whoever it is handed to.
   */
  readonly data: Uint8Array;
}

interface Prepared {
  readonly params: ChunkerParams;
  readonly gear: Int32Array;
  readonly gear2: Int32Array;
  readonly maskS: number;
  readonly maskL: number;
}

export function validateChunkerParams(p: ChunkerParams): void {
  const bad = (why: string): never => {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Chunker sizes min=${p.minSize} avg=${p.avgSize} max=${p.maxSize}: ${why}.`,
    );
  };
  if (![p.minSize, p.avgSize, p.maxSize].every(Number.isSafeInteger)) bad('sizes must be integers');
  const bits = Math.log2(p.avgSize);
  if (!Number.isInteger(bits)) bad('avg must be a power of two');
  if (bits < 8 || bits > 28) bad('avg must be between 256 bytes and 256 MiB');
  if (p.minSize < 64 || p.minSize >= p.avgSize) bad('need 64 <= min < avg');
  if (p.maxSize <= p.avgSize) bad('need max > avg');
  if (p.maxSize > MAX_BLOB_PLAINTEXT) bad(`max may be at most ${MAX_BLOB_PLAINTEXT}`);
}

function ones(n: number): number {
  return n >= 32 ? -1 : (1 << n) - 1;
}

export function prepareChunker(
  gear: Uint32Array,
  params: ChunkerParams = DEFAULT_CHUNKER_PARAMS,
): Prepared {
  validateChunkerParams(params);
  if (gear.length !== 256)
    throw new KinvaultError('INVALID_ARGUMENT', 'A gear table has 256 entries.');
  const bits = Math.log2(params.avgSize);
  const g = new Int32Array(256);
  const g2 = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    g[i] = gear[i]! | 0;
    g2[i] = (gear[i]! << 1) | 0;
  }
  return Object.freeze({
    params,
    gear: g,
    gear2: g2,
    maskS: (ones(bits + 2) << (31 - (bits + 2))) | 0,
    maskL: (ones(bits - 2) << (31 - (bits - 2))) | 0,
  });
}

/**
 * Scans [from, to) of a byte array for the first position whose hash has no bit of
 * `mask` set, and returns the index after that byte, or -1 (the running hash is then
 * in `h`). Two implementations: JavaScript over any array (the reference, used by
 * `chunkBuffer`), and WebAssembly over the streaming window (gear-scan.wat, about
 * twice as fast). Both step two bytes at a time (FastCDC 2020): with mask bit 31
 * clear, (2h) & (mask << 1) == 0 exactly when h & mask == 0.
 */
interface Scanner {
  scan(from: number, to: number, h: number, mask: number): number;
  readonly h: number;
}

class JsScanner implements Scanner {
  h = 0;
  constructor(
    private readonly c: Prepared,
    private readonly b: Uint8Array,
  ) {}

  scan(from: number, to: number, h0: number, mask: number): number {
    const { gear, gear2 } = this.c;
    const b = this.b;
    const mask2 = (mask << 1) | 0;
    let h = h0;
    let i = from;
    const last = to - 1;
    while (i < last) {
      h = ((h << 2) + gear2[b[i]!]!) | 0;
      if ((h & mask2) === 0) return i + 1;
      h = (h + gear[b[i + 1]!]!) | 0;
      if ((h & mask) === 0) return i + 2;
      i += 2;
    }
    if (i < to) {
      h = ((h << 1) + gear[b[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
    }
    this.h = h;
    return -1;
  }
}

const WASM_DATA_OFFSET = 2048;
const gearScanModule = new WebAssembly.Module(Buffer.from(GEAR_SCAN_WASM, 'base64'));

/** A WebAssembly scanner whose memory holds the gear tables and a window of `size` bytes. */
class WasmScanner implements Scanner {
  /** The window: stream bytes are copied here and scanned in place. */
  readonly window: Uint8Array;
  private readonly fn: (from: number, to: number, h: number, mask: number) => number;
  private readonly hGlobal: WebAssembly.Global;

  constructor(c: Prepared, size: number) {
    const memory = new WebAssembly.Memory({
      initial: Math.ceil((WASM_DATA_OFFSET + size) / 65536),
    });
    const tables = new Int32Array(memory.buffer, 0, 512);
    tables.set(c.gear, 0);
    tables.set(c.gear2, 256);
    const instance = new WebAssembly.Instance(gearScanModule, { env: { memory } });
    this.fn = instance.exports.scan as WasmScanner['fn'];
    this.hGlobal = instance.exports.h as WebAssembly.Global;
    this.window = new Uint8Array(memory.buffer, WASM_DATA_OFFSET, size);
  }

  scan(from: number, to: number, h: number, mask: number): number {
    return this.fn(from, to, h, mask);
  }

  get h(): number {
    return this.hGlobal.value as number;
  }
}

function boundary(c: Prepared, s: Scanner, start: number, end: number): number {
  const { minSize, avgSize, maxSize } = c.params;
  const n = end - start;
  if (n <= minSize) return end;
  const normal = start + Math.min(n, avgSize);
  const limit = start + Math.min(n, maxSize);
  let cut = s.scan(start + minSize, normal, 0, c.maskS);
  if (cut >= 0) return cut;
  cut = s.scan(normal, limit, s.h, c.maskL);
  return cut >= 0 ? cut : limit;
}

/**
 * The end of the chunk that starts at `start` in `b`, given bytes up to `end`. Unless
 * `end` is the end of the data, the caller must supply at least maxSize bytes.
 */
export function findBoundary(c: Prepared, b: Uint8Array, start: number, end: number): number {
  return boundary(c, new JsScanner(c, b), start, end);
}

/**
 * A source that fills a buffer: resolves to the number of bytes placed at its start,
 * 0 only at the end. A FileHandle fits: `(b) => fh.read(b, 0, b.byteLength, null)
 * .then((r) => r.bytesRead)`. The chunker reads straight into its window, so file
 * bytes are copied once on their way in.
 */
export interface ReadIntoSource {
  read(into: Uint8Array): Promise<number>;
}

/** Adapts an iterable of byte pieces to a ReadIntoSource. */
export function iterableSource(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): ReadIntoSource {
  const it =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
      : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  let piece: Uint8Array = new Uint8Array(0);
  return {
    async read(into) {
      while (piece.byteLength === 0) {
        const next = await it.next();
        if (next.done) return 0;
        piece = next.value;
      }
      const n = Math.min(into.byteLength, piece.byteLength);
      into.set(piece.subarray(0, n));
      piece = piece.subarray(n);
      return n;
    },
  };
}

/**
 * Where the boundary search for the current chunk stands: the chunk starts at `start`,
 * bytes before `pos` are already hashed into `h`.
 */
interface Search {
  start: number;
  pos: number;
  h: number;
}

/**
 * Continues the search over window bytes up to `end`. Returns the cut, or -1 when the
 * cut lies beyond `end` (more data needed; `st` remembers progress, so nothing is
 * hashed twice). The cut found is the one `boundary` would find with all data at hand:
 * a hash cut depends only on the bytes before it.
 */
function resume(c: Prepared, s: Scanner, st: Search, end: number, eof: boolean): number {
  const { minSize, avgSize, maxSize } = c.params;
  const normalEnd = st.start + avgSize;
  const limitEnd = st.start + maxSize;
  if (end - st.start <= minSize) return eof ? end : -1;
  let { pos, h } = st;
  if (pos < normalEnd) {
    const to = Math.min(normalEnd, end);
    const cut = s.scan(pos, to, h, c.maskS);
    if (cut >= 0) return cut;
    h = s.h;
    pos = to;
  }
  if (pos >= normalEnd) {
    const to = Math.min(limitEnd, end);
    if (pos < to) {
      const cut = s.scan(pos, to, h, c.maskL);
      if (cut >= 0) return cut;
      h = s.h;
      pos = to;
    }
    if (pos >= limitEnd) return limitEnd;
  }
  if (eof) return end;
  st.pos = pos;
  st.h = h;
  return -1;
}

/** Largest single read; smaller reads let the next one overlap scanning. */
const READ_SIZE = 4 * 1024 * 1024;

export interface ChunkOptions {
  /** Where each chunk's bytes go (default: a fresh buffer); e.g. `BufferPool.take`. */
  allocate?: (n: number) => Uint8Array;
  /**
   * The expected size of the source (e.g. from stat): a small file gets a small window.
   * A source that turns out larger is still chunked exactly (the window grows).
   */
  sizeHint?: number;
}

/**
 * Windows are reused: a 16 MiB WebAssembly memory per file would make the garbage
 * collector the busiest part of a backup of many small files.
 */
const idleScanners = new WeakMap<Prepared, Map<number, WasmScanner[]>>();
const MIN_WINDOW = 64 * 1024;

function takeScanner(c: Prepared, size: number): WasmScanner {
  return idleScanners.get(c)?.get(size)?.pop() ?? new WasmScanner(c, size);
}

function giveScanner(c: Prepared, s: WasmScanner): void {
  let bySize = idleScanners.get(c);
  if (!bySize) idleScanners.set(c, (bySize = new Map()));
  let list = bySize.get(s.window.byteLength);
  if (!list) bySize.set(s.window.byteLength, (list = []));
  // Keep up to 64 MiB of idle windows of each size.
  if (list.length * s.window.byteLength < 64 * 1024 * 1024) list.push(s);
}

/** The window for a source of about `hint` bytes: small files get small windows. */
function windowSize(c: Prepared, hint: number | undefined): number {
  const full = c.params.maxSize * 2;
  if (hint === undefined || hint >= c.params.maxSize) return full;
  let size = MIN_WINDOW;
  while (size <= hint) size *= 2;
  return Math.min(size * 2, full);
}

/** Splits a source into content-defined chunks. */
export async function* chunkSource(
  source: ReadIntoSource,
  chunker: Prepared,
  options: ChunkOptions = {},
): AsyncGenerator<Chunk> {
  const allocate = options.allocate ?? allocBytes;
  const { minSize, maxSize } = chunker.params;
  let cap = windowSize(chunker, options.sizeHint);
  let scanner = takeScanner(chunker, cap);
  let buf = scanner.window;
  const st: Search = { start: 0, pos: minSize, h: 0 };
  let end = 0;
  let offset = 0;
  let eof = false;
  const read = (): Promise<number> => {
    const room = Math.min(cap - end, READ_SIZE);
    const pending = source.read(buf.subarray(end, end + room)).then((n) => {
      if (!Number.isSafeInteger(n) || n < 0 || n > room) {
        throw new KinvaultError(
          'INTERNAL',
          `A chunker source reported ${n} bytes read into ${room}.`,
        );
      }
      return n;
    });
    // The read runs ahead while chunks are handed out; its failure is reported when it
    // is awaited below, so it must not also count as an unhandled rejection.
    pending.catch(() => {});
    return pending;
  };
  let reading: Promise<number> | undefined;
  try {
    for (;;) {
      // Cut every chunk the bytes at hand allow, while the next read is in flight.
      for (;;) {
        if (st.start === end) break;
        const cut = resume(chunker, scanner, st, end, eof);
        if (cut < 0) break;
        const data = allocate(cut - st.start);
        copyInto(data, buf.subarray(st.start, cut), 0);
        yield { offset, data };
        offset += cut - st.start;
        st.start = cut;
        st.pos = cut + minSize;
        st.h = 0;
      }
      if (eof && st.start === end) return;
      if (reading === undefined) {
        if (end === cap) {
          // Move the unfinished chunk to the front; only its bytes are copied.
          const shift = st.start;
          buf.copyWithin(0, shift, end);
          end -= shift;
          st.start -= shift;
          st.pos -= shift;
        }
        if (end === cap) {
          // A small window filled by one unfinished chunk (the source is larger than
          // its hint): continue in a full-size window.
          const bigger = takeScanner(chunker, maxSize * 2);
          bigger.window.set(buf.subarray(0, end));
          giveScanner(chunker, scanner);
          scanner = bigger;
          buf = bigger.window;
          cap = maxSize * 2;
        }
        reading = read();
      }
      const n = await reading;
      reading = undefined;
      if (n === 0) eof = true;
      end += n;
      // Start the next read now, so that it overlaps cutting what just arrived.
      if (!eof && end < cap) reading = read();
    }
  } finally {
    // A read still in flight writes into the window: wait for it before reuse.
    await reading?.catch(() => {});
    giveScanner(chunker, scanner);
  }
}

/** Splits a stream of byte pieces into content-defined chunks. */
export function chunkStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  chunker: Prepared,
  options: ChunkOptions = {},
): AsyncGenerator<Chunk> {
  return chunkSource(iterableSource(source), chunker, options);
}

/** Chunks a whole buffer (tests, small files). */
export function chunkBuffer(data: Uint8Array, chunker: Prepared): Chunk[] {
  const out: Chunk[] = [];
  let start = 0;
  while (start < data.byteLength) {
    const cut = findBoundary(chunker, data, start, data.byteLength);
    out.push({ offset: start, data: data.slice(start, cut) });
    start = cut;
  }
  return out;
}

export type PreparedChunker = Prepared;
