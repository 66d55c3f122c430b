/**
 * Directory records (ECMA-119 9.1) and their packing into a directory's sectors: a record
 * never crosses a sector boundary (6.8.1.1); one that does not fit in what is left of a
 * sector starts the next one, the rest of the sector stays zero. A directory's data
 * length is its whole number of sectors.
 */
import { putBoth16, putBoth32, putRecordDate, SECTOR } from './encoding.js';
import { ce, CE_LENGTH, splitSystemUse } from './rockridge.js';

export const FLAG_DIRECTORY = 0x02;
export const FLAG_MULTI_EXTENT = 0x80;
const MAX_RECORD = 254; // 255 is the byte's limit; records are kept to an even length

/** Where a continuation area is, once laid out. */
export interface ContinuationArea {
  length: number;
  lba: number;
  offset: number;
}

export interface DirRecord {
  /** File identifier bytes ([0] for ".", [1] for ".."). */
  identifier: Uint8Array;
  flags: number;
  date: Date;
  /** Set when the extents are laid out. */
  lba: number;
  dataLength: number;
  inline: Uint8Array[];
  overflow: Uint8Array[];
  continuation: ContinuationArea | null;
  /** Total bytes of the record, even. */
  length: number;
}

function fixedLength(identifier: Uint8Array): number {
  return 33 + identifier.length + (identifier.length % 2 === 0 ? 1 : 0);
}

/** A record with its System Use entries split between the record and a continuation area. */
export function makeRecord(
  identifier: Uint8Array,
  flags: number,
  date: Date,
  systemUse: Uint8Array[],
): DirRecord {
  const fixed = fixedLength(identifier);
  const { inline, overflow } = splitSystemUse(systemUse, MAX_RECORD - fixed);
  const inlineBytes =
    inline.reduce((sum, e) => sum + e.length, 0) + (overflow.length > 0 ? CE_LENGTH : 0);
  const length = fixed + inlineBytes + ((fixed + inlineBytes) % 2);
  if (length > MAX_RECORD)
    throw new Error(`A directory record of ${length} bytes (internal error).`);
  const continuation =
    overflow.length > 0
      ? { length: overflow.reduce((sum, e) => sum + e.length, 0), lba: 0, offset: 0 }
      : null;
  return { identifier, flags, date, lba: 0, dataLength: 0, inline, overflow, continuation, length };
}

/** Byte positions of `records` in their directory, and the directory's size in sectors. */
export function packRecords(records: readonly DirRecord[]): {
  positions: number[];
  sectors: number;
} {
  const positions: number[] = [];
  let at = 0;
  for (const record of records) {
    const room = SECTOR - (at % SECTOR);
    if (record.length > room) at += room;
    positions.push(at);
    at += record.length;
  }
  return { positions, sectors: Math.max(1, Math.ceil(at / SECTOR)) };
}

/** Writes `record` at `at` of `buf` (which is zeroed). */
export function writeRecord(buf: Uint8Array, at: number, record: DirRecord): void {
  buf[at] = record.length;
  buf[at + 1] = 0; // no extended attribute record
  putBoth32(buf, at + 2, record.lba);
  putBoth32(buf, at + 10, record.dataLength);
  putRecordDate(buf, at + 18, record.date);
  buf[at + 25] = record.flags;
  buf[at + 26] = 0; // not interleaved
  buf[at + 27] = 0;
  putBoth16(buf, at + 28, 1); // volume sequence number
  buf[at + 32] = record.identifier.length;
  buf.set(record.identifier, at + 33);
  let p = at + fixedLength(record.identifier);
  for (const e of record.inline) {
    buf.set(e, p);
    p += e.length;
  }
  if (record.continuation) {
    const { lba, offset, length } = record.continuation;
    buf.set(ce(lba, offset, length), p);
  }
}

/** A directory's records packed into its `sectors`, in a zeroed buffer of `bufferSectors`. */
export function renderDirectory(
  records: readonly DirRecord[],
  sectors: number,
  bufferSectors = sectors,
): Uint8Array {
  const buf = new Uint8Array(bufferSectors * SECTOR);
  if (packRecords(records).sectors !== sectors)
    throw new Error('Directory size changed (internal error).');
  const { positions } = packRecords(records);
  records.forEach((record, i) => writeRecord(buf, positions[i]!, record));
  return buf;
}

/** Writes the continuation areas of `records` into `buf`, which starts at sector `firstLba`. */
export function writeContinuations(
  buf: Uint8Array,
  firstLba: number,
  records: Iterable<DirRecord>,
): void {
  for (const record of records) {
    if (!record.continuation) continue;
    let p = (record.continuation.lba - firstLba) * SECTOR + record.continuation.offset;
    for (const e of record.overflow) {
      buf.set(e, p);
      p += e.length;
    }
  }
}
