/**
 * Packs: sealed blobs back to back, then an encrypted header, then a 16-byte trailer.
 *
 *   blob 0 ‖ blob 1 ‖ … ‖ sealed header ‖ trailer
 *   trailer = header length (u32le) ‖ version (u8 = 1) ‖ 3 zero bytes ‖ "KINVPACK"
 *   header plaintext = count (u32le) ‖ count × (type u8 ‖ id[32] ‖ offset u32le ‖ length u32le)
 *   sealed header = XChaCha20-Poly1305(metadata key, random nonce, plaintext,
 *                   ad = "kinvault pack header v1")
 *   pack name = lowercase hex SHA-256 of the whole file
 *
 * Contract: the reader trusts nothing in a pack. Every length is checked against the
 * file size and fixed maxima before anything is allocated; entries must tile the
 * blob area exactly. Problems are PACK_TRUNCATED, PACK_CORRUPT, PACK_UNSUPPORTED or
 * DECRYPT_FAILED, never a crash, a hang or a giant allocation.
 */
import { createHash, type Hash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { open, seal, NONCE_BYTES, SEAL_OVERHEAD } from './aead.js';
import { BLOB_ID_BYTES, isBlobType, MAX_SEALED_BLOB, openBlob, type BlobType } from './blob.js';
import { ByteReader, ByteWriter, bytesEqual, encodeUtf8, toHex } from './bytes.js';
import type { RepositoryKeys } from './keys.js';
import { systemRandom, type RandomSource } from './random.js';

export const PACK_MAGIC = encodeUtf8('KINVPACK');
export const PACK_VERSION = 1;
export const PACK_TRAILER_BYTES = 16;
export const PACK_HEADER_AD = encodeUtf8('kinvault pack header v1');
export const PACK_ENTRY_BYTES = 1 + BLOB_ID_BYTES + 4 + 4;
/** Default size at which a packer starts a new pack. */
export const DEFAULT_PACK_TARGET = 16 * 1024 * 1024;
/** Offsets are u32: no pack may reach 4 GiB. */
export const MAX_PACK_BYTES = 0xffff_ffff;
/** Enough for about 400,000 blobs; a larger header is refused unread. */
export const MAX_PACK_HEADER_BYTES = 16 * 1024 * 1024;
/** The most blobs a pack may hold, so that its sealed header stays within the limit above. */
export const MAX_PACK_ENTRIES = Math.floor((MAX_PACK_HEADER_BYTES - 4 - 40) / (1 + 32 + 4 + 4));

export interface PackEntry {
  readonly type: BlobType;
  readonly id: Uint8Array;
  /** Offset of the sealed blob from the start of the pack. */
  readonly offset: number;
  /** Length of the sealed blob (plaintext length + 40). */
  readonly length: number;
}

export interface PackInfo {
  /** Hex SHA-256 of the whole pack file. */
  readonly name: string;
  readonly size: number;
  readonly entries: readonly PackEntry[];
}

/** Where a pack writer puts bytes. `write` may be async (backpressure). */
export interface ByteSink {
  write(bytes: Uint8Array): void | Promise<void>;
}

/** Random access to a pack: a file, an HTTP range, an S3 object, a buffer. */
export interface RandomAccessSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function bufferSource(bytes: Uint8Array): RandomAccessSource {
  return {
    size: bytes.byteLength,
    read: async (offset, length) => {
      if (offset < 0 || length < 0 || offset + length > bytes.byteLength) {
        throw new KinvaultError(
          'PACK_TRUNCATED',
          `Read of ${length} bytes at ${offset} is past the end of this ${bytes.byteLength}-byte pack copy: it is truncated. Fetch another copy of the pack.`,
        );
      }
      return bytes.subarray(offset, offset + length);
    },
  };
}

export function encodePackHeader(entries: readonly PackEntry[]): Uint8Array {
  const w = new ByteWriter(4 + entries.length * PACK_ENTRY_BYTES).u32(entries.length);
  for (const e of entries) w.u8(e.type).bytes(e.id).u32(e.offset).u32(e.length);
  return w.finish();
}

/**
 * Builds one pack without doing any I/O: the caller writes each sealed blob where it
 * wants, in the order given to `append`, then the `tail` that `finish` returns.
 * The SHA-256 is computed as blobs are appended.
 */
export class PackAssembler {
  private readonly hash: Hash = createHash('sha256');
  private readonly entries: PackEntry[] = [];
  private bytes = 0;
  private finished = false;

  constructor(
    private readonly keys: Pick<RepositoryKeys, 'metadataKey'>,
    private readonly random: RandomSource = systemRandom,
  ) {}

  /** Bytes of blobs appended so far. */
  get size(): number {
    return this.bytes;
  }
  get count(): number {
    return this.entries.length;
  }
  /** True when no further blob may be added. */
  get full(): boolean {
    return this.entries.length >= MAX_PACK_ENTRIES;
  }

  /** Records a sealed blob, given whole or as parts whose concatenation it is. */
  append(type: BlobType, id: Uint8Array, sealed: Uint8Array | readonly Uint8Array[]): PackEntry {
    if (this.finished) throw new KinvaultError('INTERNAL', 'PackAssembler.append after finish.');
    if (id.byteLength !== BLOB_ID_BYTES) {
      throw new KinvaultError('INVALID_ARGUMENT', 'A blob id is 32 bytes.');
    }
    const parts = sealed instanceof Uint8Array ? [sealed] : sealed;
    let length = 0;
    for (const p of parts) length += p.byteLength;
    if (length < SEAL_OVERHEAD || length > MAX_SEALED_BLOB) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `A sealed blob of ${length} bytes is out of range.`,
      );
    }
    if (this.full || this.bytes + length > MAX_PACK_BYTES - MAX_PACK_HEADER_BYTES) {
      throw new KinvaultError('PACK_TOO_LARGE', 'The pack is full; start a new one.');
    }
    const entry = { type, id: new Uint8Array(id), offset: this.bytes, length };
    this.entries.push(entry);
    for (const p of parts) this.hash.update(p);
    this.bytes += length;
    return entry;
  }

  /** The sealed header and trailer (the pack's last bytes), and the pack's name and entries. */
  finish(): { tail: Uint8Array; info: PackInfo } {
    if (this.finished) throw new KinvaultError('INTERNAL', 'PackAssembler.finish called twice.');
    this.finished = true;
    const header = seal(
      this.keys.metadataKey,
      this.random(NONCE_BYTES),
      encodePackHeader(this.entries),
      PACK_HEADER_AD,
    );
    const tail = new ByteWriter(header.byteLength + PACK_TRAILER_BYTES)
      .bytes(header)
      .u32(header.byteLength)
      .u8(PACK_VERSION)
      .u8(0)
      .u8(0)
      .u8(0)
      .bytes(PACK_MAGIC)
      .finish();
    this.hash.update(tail);
    const info = {
      name: this.hash.digest('hex'),
      size: this.bytes + tail.byteLength,
      entries: this.entries,
    };
    return { tail, info };
  }
}

/** Writes one pack to a sink as blobs arrive. */
export class PackWriter {
  private readonly assembler: PackAssembler;

  constructor(
    keys: Pick<RepositoryKeys, 'metadataKey'>,
    private readonly sink: ByteSink,
    random: RandomSource = systemRandom,
  ) {
    this.assembler = new PackAssembler(keys, random);
  }

  get size(): number {
    return this.assembler.size;
  }
  get count(): number {
    return this.assembler.count;
  }

  async add(type: BlobType, id: Uint8Array, sealed: Uint8Array): Promise<void> {
    this.assembler.append(type, id, sealed);
    await this.sink.write(sealed);
  }

  async finish(): Promise<PackInfo> {
    const { tail, info } = this.assembler.finish();
    await this.sink.write(tail);
    return info;
  }
}

/** Writes a whole pack into memory (tests, vectors, small jobs). */
export async function buildPack(
  keys: Pick<RepositoryKeys, 'metadataKey'>,
  blobs: readonly { type: BlobType; id: Uint8Array; sealed: Uint8Array }[],
  random: RandomSource = systemRandom,
): Promise<{ bytes: Uint8Array; info: PackInfo }> {
  const parts: Uint8Array[] = [];
  const writer = new PackWriter(keys, { write: (b) => void parts.push(b) }, random);
  for (const b of blobs) await writer.add(b.type, b.id, b.sealed);
  const info = await writer.finish();
  return { bytes: Buffer.concat(parts), info };
}

function corrupt(why: string, details: Record<string, unknown> = {}): KinvaultError {
  return new KinvaultError(
    'PACK_CORRUPT',
    `The pack is damaged: ${why}. Another copy of it may be intact ("kinvaultd check" on the NAS checks them).`,
    { details },
  );
}

/** Parses a trailer; returns the header length. */
export function parsePackTrailer(trailer: Uint8Array, packSize: number): number {
  const r = new ByteReader(trailer, 'PACK_CORRUPT', 'Pack trailer');
  const headerLength = r.u32();
  const version = r.u8();
  const reserved = r.bytes(3);
  const magic = r.bytes(8);
  if (!bytesEqual(magic, PACK_MAGIC)) {
    throw new KinvaultError(
      'PACK_CORRUPT',
      'Not a Kinvault pack, or its end is missing: the last 8 bytes are not "KINVPACK".',
    );
  }
  if (version !== PACK_VERSION) {
    throw new KinvaultError(
      'PACK_UNSUPPORTED',
      `Pack format version ${version} is not supported by this program (it reads ${PACK_VERSION}). Update Kinvault.`,
    );
  }
  if (reserved.some((b) => b !== 0)) throw corrupt('reserved trailer bytes are not zero');
  const minHeader = SEAL_OVERHEAD + 4;
  if (headerLength < minHeader || headerLength > MAX_PACK_HEADER_BYTES) {
    throw corrupt(`header length ${headerLength} is out of range`, { headerLength });
  }
  if (headerLength > packSize - PACK_TRAILER_BYTES) {
    throw new KinvaultError(
      'PACK_TRUNCATED',
      `The pack is truncated: its header claims ${headerLength} bytes but the file has only ${packSize} bytes.`,
      { details: { headerLength, packSize } },
    );
  }
  if ((headerLength - minHeader) % PACK_ENTRY_BYTES !== 0)
    throw corrupt(`header length ${headerLength} does not fit whole entries`);
  return headerLength;
}

/** Decodes and validates a decrypted header against the blob area size. */
export function decodePackHeader(plain: Uint8Array, blobAreaBytes: number): PackEntry[] {
  const r = new ByteReader(plain, 'PACK_CORRUPT', 'Pack header');
  const count = r.u32();
  if (count * PACK_ENTRY_BYTES !== r.remaining)
    throw corrupt(`header says ${count} entries but holds ${r.remaining} bytes of them`);
  const entries: PackEntry[] = [];
  let expected = 0;
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    const id = r.copy(BLOB_ID_BYTES);
    const offset = r.u32();
    const length = r.u32();
    if (!isBlobType(type)) throw corrupt(`entry ${i} has unknown blob type ${type}`);
    if (offset !== expected) throw corrupt(`entry ${i} starts at ${offset}, expected ${expected}`);
    if (length < SEAL_OVERHEAD || length > MAX_SEALED_BLOB)
      throw corrupt(`entry ${i} has impossible length ${length}`);
    expected += length;
    if (expected > blobAreaBytes) {
      throw new KinvaultError(
        'PACK_TRUNCATED',
        `The pack is missing bytes: blob ${i} ends at ${expected} but only ${blobAreaBytes} bytes of blobs are present.`,
        { details: { blob: i, expected, present: blobAreaBytes } },
      );
    }
    entries.push({ type, id, offset, length });
  }
  if (expected !== blobAreaBytes)
    throw corrupt(`entries cover ${expected} bytes but the blob area has ${blobAreaBytes}`);
  return entries;
}

/** Reads and decrypts a pack's header from its tail: two small reads, never the whole pack. */
export async function readPackHeader(
  source: RandomAccessSource,
  keys: Pick<RepositoryKeys, 'metadataKey'>,
): Promise<PackEntry[]> {
  const size = source.size;
  if (!Number.isSafeInteger(size) || size < PACK_TRAILER_BYTES) {
    throw new KinvaultError(
      'PACK_TRUNCATED',
      `The pack is truncated: ${size} bytes is shorter than its ${PACK_TRAILER_BYTES}-byte trailer.`,
    );
  }
  if (size > MAX_PACK_BYTES) throw corrupt(`${size} bytes is larger than any pack`);
  const headerLength = parsePackTrailer(
    await source.read(size - PACK_TRAILER_BYTES, PACK_TRAILER_BYTES),
    size,
  );
  const headerStart = size - PACK_TRAILER_BYTES - headerLength;
  const sealedHeader = await source.read(headerStart, headerLength);
  let plain: Uint8Array;
  try {
    plain = open(keys.metadataKey, sealedHeader, PACK_HEADER_AD);
  } catch (error) {
    throw new KinvaultError(
      'DECRYPT_FAILED',
      'The pack header could not be decrypted: the master key is wrong or the pack is damaged.',
      { cause: error },
    );
  }
  return decodePackHeader(plain, headerStart);
}

/** Reads one blob by its entry and returns its verified plaintext. */
export async function readBlob(
  source: RandomAccessSource,
  keys: Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>,
  entry: PackEntry,
): Promise<Uint8Array> {
  if (
    entry.offset < 0 ||
    entry.length < SEAL_OVERHEAD ||
    entry.offset + entry.length > source.size
  ) {
    throw new KinvaultError(
      'PACK_TRUNCATED',
      `Blob ${toHex(entry.id)} at ${entry.offset}+${entry.length} lies past the end of the pack (${source.size} bytes).`,
    );
  }
  const sealed = await source.read(entry.offset, entry.length);
  return openBlob(keys, entry.type, entry.id, sealed);
}

/** Streams a pack's bytes through SHA-256 and compares with its name. Needs no key. */
export async function verifyPackHash(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  name: string,
): Promise<{ ok: boolean; actual: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of chunks) {
    hash.update(c);
    size += c.byteLength;
  }
  const actual = hash.digest('hex');
  return { ok: actual === name.toLowerCase(), actual, size };
}
