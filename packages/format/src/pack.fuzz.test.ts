/**
 * Property and fuzz tests for packs: the writer/reader round trip, and the reader's
 * contract that a damaged, truncated, extended or forged pack is always a KinvaultError
 * with a pack/decrypt code — never wrong plaintext, another exception, a hang or a giant
 * allocation.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKinvaultError, type ErrorCode } from '@kinvault/protocol';
import { NONCE_BYTES, seal, SEAL_OVERHEAD } from './aead.js';
import { blobId, BlobType, MAX_SEALED_BLOB, sealBlob } from './blob.js';
import { deriveKeys } from './keys.js';
import {
  bufferSource,
  buildPack,
  decodePackHeader,
  encodePackHeader,
  MAX_PACK_BYTES,
  MAX_PACK_HEADER_BYTES,
  PACK_ENTRY_BYTES,
  PACK_HEADER_AD,
  PACK_TRAILER_BYTES,
  readBlob,
  readPackHeader,
  type PackEntry,
  type RandomAccessSource,
} from './pack.js';
import { deterministicRandom } from './random.js';

const keys = deriveKeys(new Uint8Array(32).fill(7));
const wrongKeys = deriveKeys(new Uint8Array(32).fill(8));

/** Every way a pack reader is allowed to fail. */
const READ_CODES: readonly ErrorCode[] = [
  'PACK_TRUNCATED',
  'PACK_CORRUPT',
  'PACK_UNSUPPORTED',
  'DECRYPT_FAILED',
  'BLOB_ID_MISMATCH',
];
/** decodePackHeader reports a bad layout as PACK_CORRUPT, or PACK_TRUNCATED when an entry ends past the blob area. */
const LAYOUT_CODES: readonly ErrorCode[] = ['PACK_CORRUPT', 'PACK_TRUNCATED'];

const MAGIC = Buffer.from('KINVPACK', 'latin1');
const MIN_HEADER = SEAL_OVERHEAD + 4;
/** The largest header length the reader accepts (fits whole entries, within the maximum). */
const LARGEST_HEADER =
  MIN_HEADER +
  PACK_ENTRY_BYTES * Math.floor((MAX_PACK_HEADER_BYTES - MIN_HEADER) / PACK_ENTRY_BYTES);

type Outcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode };

/** Runs `run`; a KinvaultError becomes its code, anything else fails the property. */
async function attempt<T>(run: () => Promise<T> | T): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    if (!isKinvaultError(error)) {
      throw new Error(`expected a KinvaultError, got: ${String(error)}`, { cause: error });
    }
    return { ok: false, code: error.code };
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Entries as plain comparable values (ids may be Buffers or Uint8Arrays). */
function plainEntries(entries: readonly PackEntry[]) {
  return entries.map((e) => ({
    type: e.type,
    id: Buffer.from(e.id).toString('hex'),
    offset: e.offset,
    length: e.length,
  }));
}

/** Independent little-endian trailer writer (does not use ByteWriter). */
function trailer(headerLength: number, version = 1, reserved: readonly number[] = [0, 0, 0]) {
  const t = new Uint8Array(PACK_TRAILER_BYTES);
  const view = new DataView(t.buffer);
  view.setUint32(0, headerLength >>> 0, true);
  t[4] = version;
  t.set(reserved.slice(0, 3), 5);
  t.set(MAGIC, 8);
  return t;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function expectTiles(entries: readonly PackEntry[], blobArea: number): void {
  let at = 0;
  for (const e of entries) {
    expect([BlobType.data, BlobType.tree]).toContain(e.type);
    expect(e.id.byteLength).toBe(32);
    expect(e.offset).toBe(at);
    expect(e.length).toBeGreaterThanOrEqual(SEAL_OVERHEAD);
    expect(e.length).toBeLessThanOrEqual(MAX_SEALED_BLOB);
    at += e.length;
  }
  expect(at).toBe(blobArea);
}

// ---------------------------------------------------------------------------------
// Arbitraries

interface BlobSpec {
  type: BlobType;
  plaintext: Uint8Array;
}
interface PackSpec {
  blobs: BlobSpec[];
  seed: number;
}

const blobSpec = (maxBytes: number): fc.Arbitrary<BlobSpec> =>
  fc.record({
    type: fc.constantFrom(BlobType.data, BlobType.tree),
    plaintext: fc.uint8Array({ maxLength: maxBytes }),
  });

const packSpec = (maxBlobs: number, maxBytes: number): fc.Arbitrary<PackSpec> =>
  fc.record({ blobs: fc.array(blobSpec(maxBytes), { maxLength: maxBlobs }), seed: fc.nat() });

async function makePack(spec: PackSpec) {
  const random = deterministicRandom(`pack.fuzz ${spec.seed}`);
  const items = spec.blobs.map((b) => {
    const id = blobId(keys, b.type, b.plaintext);
    return { ...b, id, sealed: sealBlob(keys, b.type, id, b.plaintext, random) };
  });
  const { bytes, info } = await buildPack(keys, items, random);
  return { items, bytes: new Uint8Array(bytes), info };
}

type Mutation =
  | { kind: 'flip'; at: number; fromEnd: boolean; bit: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'append'; extra: Uint8Array }
  | { kind: 'headerLength'; how: 'abs' | 'rel' | 'size'; value: number }
  | { kind: 'splice'; at: number; fromEnd: boolean; remove: number; insert: Uint8Array };

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    fromEnd: fc.boolean(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
  fc.record({
    kind: fc.constant('append' as const),
    extra: fc.uint8Array({ minLength: 1, maxLength: 200 }),
  }),
  fc.oneof(
    fc.record({
      kind: fc.constant('headerLength' as const),
      how: fc.constant('abs' as const),
      value: fc.oneof(
        u32,
        fc.constantFrom(
          0,
          1,
          MIN_HEADER - 1,
          MIN_HEADER,
          MIN_HEADER + 1,
          MIN_HEADER + PACK_ENTRY_BYTES,
          LARGEST_HEADER,
          MAX_PACK_HEADER_BYTES,
          MAX_PACK_HEADER_BYTES + 1,
          0x7fff_ffff,
          0x8000_0000,
          0xffff_ffff,
        ),
      ),
    }),
    // Near the real header length, including whole entries more or fewer.
    fc.record({
      kind: fc.constant('headerLength' as const),
      how: fc.constant('rel' as const),
      value: fc.oneof(
        fc.integer({ min: -3, max: 3 }).map((k) => k * PACK_ENTRY_BYTES),
        fc.integer({ min: -300, max: 300 }),
      ),
    }),
    // Near "everything before the trailer".
    fc.record({
      kind: fc.constant('headerLength' as const),
      how: fc.constant('size' as const),
      value: fc.integer({ min: -80, max: 80 }),
    }),
  ),
  fc.record({
    kind: fc.constant('splice' as const),
    at: fc.nat(),
    fromEnd: fc.boolean(),
    remove: fc.integer({ min: 0, max: 64 }),
    insert: fc.uint8Array({ maxLength: 64 }),
  }),
);

function applyMutation(bytes: Uint8Array, m: Mutation): Uint8Array {
  const len = bytes.byteLength;
  const out = bytes.slice();
  switch (m.kind) {
    case 'flip': {
      // fromEnd aims at the header and trailer, which a uniform position rarely hits.
      const at = m.fromEnd ? len - 1 - (m.at % Math.min(len, 300)) : m.at % len;
      out[at]! ^= 1 << m.bit;
      return out;
    }
    case 'truncate':
      return out.slice(0, m.keep % len);
    case 'append':
      return concat(out, m.extra);
    case 'headerLength': {
      const real = new DataView(out.buffer).getUint32(len - PACK_TRAILER_BYTES, true);
      const value =
        m.how === 'abs'
          ? m.value
          : m.how === 'rel'
            ? real + m.value
            : len - PACK_TRAILER_BYTES + m.value;
      new DataView(out.buffer).setUint32(len - PACK_TRAILER_BYTES, value >>> 0, true);
      return out;
    }
    case 'splice': {
      const at = m.fromEnd ? len - (m.at % Math.min(len + 1, 300)) : m.at % (len + 1);
      return concat(out.subarray(0, at), m.insert, out.subarray(Math.min(len, at + m.remove)));
    }
  }
}

// ---------------------------------------------------------------------------------

describe('pack fuzz: round trip', () => {
  it('buildPack → readPackHeader returns exactly the entries and readBlob every plaintext', async () => {
    await fc.assert(
      fc.asyncProperty(packSpec(20, 4096), async (spec) => {
        const { items, bytes, info } = await makePack(spec);
        expect(info.name).toBe(sha256Hex(bytes));
        expect(info.size).toBe(bytes.byteLength);

        // The entries we expect, computed independently of the writer.
        let offset = 0;
        const expected = items.map((b) => {
          const e = {
            type: b.type,
            id: b.id,
            offset,
            length: b.plaintext.byteLength + SEAL_OVERHEAD,
          };
          offset += e.length;
          return e;
        });
        expect(plainEntries(info.entries)).toEqual(plainEntries(expected));
        // blob area ‖ sealed header (count + entries) ‖ trailer, and nothing else
        expect(bytes.byteLength).toBe(
          offset + MIN_HEADER + PACK_ENTRY_BYTES * items.length + PACK_TRAILER_BYTES,
        );

        const source = bufferSource(bytes);
        const entries = await readPackHeader(source, keys);
        expect(plainEntries(entries)).toEqual(plainEntries(expected));
        for (const [i, e] of entries.entries()) {
          const plain = await readBlob(source, keys, e);
          expect(same(plain, items[i]!.plaintext)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a wrong master key is DECRYPT_FAILED for the header and for every blob', async () => {
    await fc.assert(
      fc.asyncProperty(packSpec(5, 512), async (spec) => {
        const { bytes, info } = await makePack(spec);
        const source = bufferSource(bytes);
        const header = await attempt(() => readPackHeader(source, wrongKeys));
        expect(header).toEqual({ ok: false, code: 'DECRYPT_FAILED' });
        for (const e of info.entries) {
          expect(await attempt(() => readBlob(source, wrongKeys, e))).toEqual({
            ok: false,
            code: 'DECRYPT_FAILED',
          });
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('pack fuzz: damaged packs', () => {
  it('a mutation never yields wrong data, and any change makes some read fail with a pack/decrypt code', async () => {
    await fc.assert(
      fc.asyncProperty(packSpec(6, 600), mutationArb, async (spec, mutation) => {
        const { items, bytes, info } = await makePack(spec);
        const mutated = applyMutation(bytes, mutation);
        const changed = !same(mutated, bytes);
        const source = bufferSource(mutated);
        let failures = 0;

        const header = await attempt(() => readPackHeader(source, keys));
        if (header.ok) {
          // The header is authenticated: if it reads at all, it is the original one.
          expect(plainEntries(header.value)).toEqual(plainEntries(info.entries));
        } else {
          expect(READ_CODES).toContain(header.code);
          failures++;
        }
        // Every blob by its original entry: correct plaintext or an allowed error.
        for (const [i, e] of info.entries.entries()) {
          const blob = await attempt(() => readBlob(source, keys, e));
          if (blob.ok) {
            expect(same(blob.value, items[i]!.plaintext)).toBe(true);
          } else {
            expect(READ_CODES).toContain(blob.code);
            failures++;
          }
        }
        if (changed) expect(failures).toBeGreaterThan(0);
        else expect(failures).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes are never a pack', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (bytes) => {
        const result = await attempt(() => readPackHeader(bufferSource(bytes), keys));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(READ_CODES).toContain(result.code);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes behind a well-formed trailer are never a pack', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2000 }),
        fc.oneof(
          u32,
          fc.integer({ min: 0, max: 30 }).map((k) => MIN_HEADER + k * PACK_ENTRY_BYTES),
        ),
        fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 255 })),
        fc.oneof(
          fc.constant([0, 0, 0]),
          fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 3, maxLength: 3 }),
        ),
        async (body, headerLength, version, reserved) => {
          const bytes = concat(body, trailer(headerLength, version, reserved));
          const result = await attempt(() => readPackHeader(bufferSource(bytes), keys));
          expect(result.ok).toBe(false);
          if (!result.ok) expect(READ_CODES).toContain(result.code);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('an authentic header with a forged layout tiles the blob area exactly or is PACK_CORRUPT/PACK_TRUNCATED', async () => {
    const entryArb = fc.record({
      type: fc.oneof(fc.constantFrom(1, 2), fc.integer({ min: 0, max: 255 })),
      id: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      length: fc.oneof(
        fc.integer({ min: SEAL_OVERHEAD, max: 300 }),
        fc.constantFrom(0, SEAL_OVERHEAD - 1, MAX_SEALED_BLOB, MAX_SEALED_BLOB + 1, 0xffff_ffff),
      ),
      // Offsets are usually the honest running total, sometimes anything.
      offsetDelta: fc.oneof(
        { weight: 5, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: -50, max: 50 }) },
      ),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { maxLength: 6 }),
        fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.integer({ min: -200, max: 200 })),
        fc.nat(),
        async (specs, areaDelta, seed) => {
          // Header plaintext written by hand, so the writer's checks cannot interfere.
          let running = 0;
          const plain = new Uint8Array(4 + specs.length * PACK_ENTRY_BYTES);
          const view = new DataView(plain.buffer);
          view.setUint32(0, specs.length, true);
          for (const [i, s] of specs.entries()) {
            const at = 4 + i * PACK_ENTRY_BYTES;
            plain[at] = s.type;
            plain.set(s.id, at + 1);
            view.setUint32(at + 33, (running + s.offsetDelta) >>> 0, true);
            view.setUint32(at + 37, s.length, true);
            running += Math.min(s.length, 1000);
          }
          const area = Math.max(0, running + areaDelta);
          const random = deterministicRandom(`forged ${seed}`);
          const sealedHeader = seal(keys.metadataKey, random(NONCE_BYTES), plain, PACK_HEADER_AD);
          const bytes = concat(random(area), sealedHeader, trailer(sealedHeader.byteLength));
          const source = bufferSource(bytes);

          const header = await attempt(() => readPackHeader(source, keys));
          if (!header.ok) {
            expect(LAYOUT_CODES).toContain(header.code);
            return;
          }
          expectTiles(header.value, area);
          expect(same(encodePackHeader(header.value), plain)).toBe(true);
          // The blob area is random bytes: every blob read fails cleanly.
          for (const e of header.value) {
            const blob = await attempt(() => readBlob(source, keys, e));
            expect(blob.ok).toBe(false);
            if (!blob.ok) expect(READ_CODES).toContain(blob.code);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

/** A header plaintext either decodes to entries that tile the area exactly and re-encode
 * to the same bytes, or is refused with a layout error code. */
function decodesOrRefuses(plain: Uint8Array, area: number): void {
  let entries: PackEntry[];
  try {
    entries = decodePackHeader(plain, area);
  } catch (error) {
    expect(isKinvaultError(error)).toBe(true);
    if (isKinvaultError(error)) expect(LAYOUT_CODES).toContain(error.code);
    return;
  }
  expectTiles(entries, area);
  expect(same(encodePackHeader(entries), plain)).toBe(true);
}

describe('pack fuzz: decodePackHeader', () => {
  it('random plaintext: entries that tile the blob area exactly, or PACK_CORRUPT/PACK_TRUNCATED', () => {
    const plainArb = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      // A count that matches the byte length, so decoding reaches the entries.
      fc
        .array(fc.uint8Array({ minLength: PACK_ENTRY_BYTES, maxLength: PACK_ENTRY_BYTES }), {
          maxLength: 6,
        })
        .map((entries) => {
          const count = new Uint8Array(4);
          new DataView(count.buffer).setUint32(0, entries.length, true);
          return concat(count, ...entries);
        }),
    );
    const areaArb = fc.oneof(
      fc.nat(),
      fc.integer({ min: 0, max: 2000 }),
      fc.constantFrom(0, MAX_PACK_BYTES, Number.MAX_SAFE_INTEGER),
    );
    fc.assert(
      fc.property(plainArb, areaArb, (plain, area) => decodesOrRefuses(plain, area)),
      { numRuns: 500 },
    );
  });

  it('near-valid headers: tile exactly or PACK_CORRUPT/PACK_TRUNCATED', () => {
    const arb = fc
      .record({
        lengths: fc.array(
          fc.oneof(
            fc.integer({ min: SEAL_OVERHEAD, max: 5000 }),
            fc.constantFrom(SEAL_OVERHEAD - 1, MAX_SEALED_BLOB, MAX_SEALED_BLOB + 1),
          ),
          { maxLength: 8 },
        ),
        types: fc.array(fc.oneof(fc.constantFrom(1, 2), fc.integer({ min: 0, max: 255 })), {
          minLength: 8,
          maxLength: 8,
        }),
        countDelta: fc.oneof(
          { weight: 4, arbitrary: fc.constant(0) },
          fc.integer({ min: -2, max: 2 }),
        ),
        areaDelta: fc.oneof(
          { weight: 3, arbitrary: fc.constant(0) },
          fc.integer({ min: -100, max: 100 }),
        ),
      })
      .map(({ lengths, types, countDelta, areaDelta }) => {
        const plain = new Uint8Array(4 + lengths.length * PACK_ENTRY_BYTES);
        const view = new DataView(plain.buffer);
        view.setUint32(0, Math.max(0, lengths.length + countDelta), true);
        let offset = 0;
        for (const [i, length] of lengths.entries()) {
          const at = 4 + i * PACK_ENTRY_BYTES;
          plain[at] = types[i]!;
          plain.fill(i, at + 1, at + 33);
          view.setUint32(at + 33, offset >>> 0, true);
          view.setUint32(at + 37, length, true);
          offset += length;
        }
        return { plain, area: Math.max(0, offset + areaDelta) };
      });
    fc.assert(
      fc.property(arb, ({ plain, area }) => decodesOrRefuses(plain, area)),
      { numRuns: 500 },
    );
  });
});

describe('pack fuzz: hand-crafted trailers and huge sources', () => {
  async function codeOf(bytes: Uint8Array): Promise<ErrorCode | 'ok'> {
    const result = await attempt(() => readPackHeader(bufferSource(bytes), keys));
    return result.ok ? 'ok' : result.code;
  }

  it('a trailer claiming 0xFFFFFFFF header bytes is PACK_CORRUPT', async () => {
    expect(await codeOf(trailer(0xffff_ffff))).toBe('PACK_CORRUPT');
    expect(await codeOf(concat(new Uint8Array(5000), trailer(0xffff_ffff)))).toBe('PACK_CORRUPT');
    expect(await codeOf(concat(new Uint8Array(100), trailer(MAX_PACK_HEADER_BYTES + 1)))).toBe(
      'PACK_CORRUPT',
    );
  });

  it('a trailer claiming more header bytes than the file has is PACK_TRUNCATED', async () => {
    expect(await codeOf(trailer(MIN_HEADER))).toBe('PACK_TRUNCATED');
    expect(
      await codeOf(
        concat(
          new Uint8Array(MIN_HEADER + PACK_ENTRY_BYTES - 1),
          trailer(MIN_HEADER + PACK_ENTRY_BYTES),
        ),
      ),
    ).toBe('PACK_TRUNCATED');
    expect(await codeOf(concat(new Uint8Array(1000), trailer(LARGEST_HEADER)))).toBe(
      'PACK_TRUNCATED',
    );
  });

  it('short files and wrong trailers', async () => {
    expect(await codeOf(new Uint8Array(0))).toBe('PACK_TRUNCATED');
    expect(await codeOf(new Uint8Array(PACK_TRAILER_BYTES - 1))).toBe('PACK_TRUNCATED');
    expect(await codeOf(new Uint8Array(PACK_TRAILER_BYTES))).toBe('PACK_CORRUPT');
    const body = new Uint8Array(200);
    expect(await codeOf(concat(body, trailer(MIN_HEADER, 2)))).toBe('PACK_UNSUPPORTED');
    expect(await codeOf(concat(body, trailer(MIN_HEADER, 1, [0, 1, 0])))).toBe('PACK_CORRUPT');
    expect(await codeOf(concat(body, trailer(MIN_HEADER + 1)))).toBe('PACK_CORRUPT');
    expect(await codeOf(concat(body, trailer(MIN_HEADER)))).toBe('DECRYPT_FAILED');
  });

  it('a sealed blob whose id is not its content hash is BLOB_ID_MISMATCH; a swapped type is DECRYPT_FAILED', async () => {
    const random = deterministicRandom('pack.fuzz id mismatch');
    const plaintext = random(100);
    const fakeId = random(32);
    const sealed = sealBlob(keys, BlobType.data, fakeId, plaintext, random);
    const { bytes, info } = await buildPack(
      keys,
      [{ type: BlobType.data, id: fakeId, sealed }],
      random,
    );
    const source = bufferSource(bytes);
    const [entry] = await readPackHeader(source, keys);
    expect(await attempt(() => readBlob(source, keys, entry!))).toEqual({
      ok: false,
      code: 'BLOB_ID_MISMATCH',
    });
    expect(
      await attempt(() => readBlob(source, keys, { ...info.entries[0]!, type: BlobType.tree })),
    ).toEqual({ ok: false, code: 'DECRYPT_FAILED' });
  });

  /** A source of any claimed size that records reads and never holds more than 16 MiB. */
  function recordingSource(size: number, tail: Uint8Array) {
    const reads: { offset: number; length: number }[] = [];
    let zeros: Uint8Array | undefined;
    const source: RandomAccessSource = {
      size,
      read: async (offset, length) => {
        reads.push({ offset, length });
        if (!(length >= 0 && length <= MAX_PACK_HEADER_BYTES + PACK_TRAILER_BYTES)) {
          throw new Error(`the reader asked for ${length} bytes`);
        }
        if (offset === size - PACK_TRAILER_BYTES && length === PACK_TRAILER_BYTES) return tail;
        zeros ??= new Uint8Array(MAX_PACK_HEADER_BYTES + PACK_TRAILER_BYTES);
        return zeros.subarray(0, length);
      },
    };
    return { source, reads };
  }

  it('a source claiming 2**40 bytes is refused before any giant read', async () => {
    for (const headerLength of [0xffff_ffff, LARGEST_HEADER, MIN_HEADER]) {
      const { source, reads } = recordingSource(2 ** 40, trailer(headerLength));
      const result = await attempt(() => readPackHeader(source, keys));
      expect(result).toEqual({ ok: false, code: 'PACK_CORRUPT' });
      for (const r of reads) expect(r.length).toBeLessThanOrEqual(MAX_PACK_HEADER_BYTES + 16);
    }
  });

  it('any claimed size and header length: at most two bounded reads, then a clean error', async () => {
    const sizeArb = fc.oneof(
      fc.constantFrom(
        2 ** 40,
        MAX_PACK_BYTES,
        MAX_PACK_BYTES + 1,
        2 ** 53,
        Number.MAX_SAFE_INTEGER,
      ),
      fc.integer({ min: 0, max: MAX_PACK_BYTES }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.double(),
    );
    const headerLengthArb = fc.oneof(
      u32,
      fc.constantFrom(0xffff_ffff, LARGEST_HEADER, LARGEST_HEADER + PACK_ENTRY_BYTES, MIN_HEADER),
      fc.integer({ min: 0, max: 1000 }).map((k) => MIN_HEADER + k * PACK_ENTRY_BYTES),
    );
    await fc.assert(
      fc.asyncProperty(sizeArb, headerLengthArb, async (size, headerLength) => {
        const { source, reads } = recordingSource(size, trailer(headerLength));
        const result = await attempt(() => readPackHeader(source, keys));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(READ_CODES).toContain(result.code);
        expect(reads.length).toBeLessThanOrEqual(2);
        let total = 0;
        for (const r of reads) {
          expect(r.offset).toBeGreaterThanOrEqual(0);
          expect(r.offset + r.length).toBeLessThanOrEqual(size);
          total += r.length;
        }
        expect(total).toBeLessThanOrEqual(MAX_PACK_HEADER_BYTES + 16);
      }),
      { numRuns: 200 },
    );
  });
});
