/**
 * The byte-level encodings of ECMA-119: both-endian numbers, the two date forms, padded
 * character fields and UCS-2 big-endian text (Joliet). Writers fill a caller's buffer at
 * an offset; nothing here allocates more than the bytes it returns.
 */

export const SECTOR = 2048;

/** 16-bit both-endian (little-endian then big-endian), 4 bytes. ECMA-119 7.2.3. */
export function putBoth16(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value & 0xff;
  buf[at + 1] = (value >>> 8) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

/** 32-bit both-endian, 8 bytes. ECMA-119 7.3.3. */
export function putBoth32(buf: Uint8Array, at: number, value: number): void {
  putLe32(buf, at, value);
  putBe32(buf, at + 4, value);
}

export function putLe16(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value & 0xff;
  buf[at + 1] = (value >>> 8) & 0xff;
}

export function putBe16(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 8) & 0xff;
  buf[at + 1] = value & 0xff;
}

export function putLe32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value & 0xff;
  buf[at + 1] = (value >>> 8) & 0xff;
  buf[at + 2] = (value >>> 16) & 0xff;
  buf[at + 3] = (value >>> 24) & 0xff;
}

export function putBe32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 24) & 0xff;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

export function getLe32(buf: Uint8Array, at: number): number {
  return ((buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16)) + buf[at + 3]! * 0x1000000) >>> 0;
}

export function getBe32(buf: Uint8Array, at: number): number {
  return (buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!)) >>> 0;
}

export function getLe16(buf: Uint8Array, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8);
}

export function getBe16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

const MIN_RECORD_TIME = Date.UTC(1900, 0, 1);
const MAX_RECORD_TIME = Date.UTC(2155, 11, 31, 23, 59, 59);

/**
 * The 7-byte date of directory records and Rock Ridge TF (ECMA-119 9.1.5): years since
 * 1900, month, day, hour, minute, second, offset from GMT in 15-minute units. Written in
 * UTC (offset 0), whole seconds (rounded down); dates outside 1900–2155 are clamped to
 * the nearest one the field can hold.
 */
export function putRecordDate(buf: Uint8Array, at: number, date: Date): void {
  const ms = Math.min(MAX_RECORD_TIME, Math.max(MIN_RECORD_TIME, date.getTime()));
  const d = new Date(ms);
  buf[at] = d.getUTCFullYear() - 1900;
  buf[at + 1] = d.getUTCMonth() + 1;
  buf[at + 2] = d.getUTCDate();
  buf[at + 3] = d.getUTCHours();
  buf[at + 4] = d.getUTCMinutes();
  buf[at + 5] = d.getUTCSeconds();
  buf[at + 6] = 0;
}

/** Reads a 7-byte date (any GMT offset) back into a Date. */
export function getRecordDate(buf: Uint8Array, at: number): Date {
  const offset = ((buf[at + 6]! << 24) >> 24) * 15 * 60_000;
  const local = Date.UTC(
    1900 + buf[at]!,
    buf[at + 1]! - 1,
    buf[at + 2]!,
    buf[at + 3]!,
    buf[at + 4]!,
    buf[at + 5]!,
  );
  return new Date(local - offset);
}

/**
 * The 17-byte date of volume descriptors (ECMA-119 8.4.26.1): "YYYYMMDDHHMMSScc" in
 * ASCII digits, then the GMT offset (0: UTC). `null` writes "not specified" (all '0'
 * digits, offset 0).
 */
export function putVolumeDate(buf: Uint8Array, at: number, date: Date | null): void {
  let text = '0000000000000000';
  if (date) {
    const year = date.getUTCFullYear();
    if (year < 1 || year > 9999) {
      throw new RangeError(`A volume date must be in the years 1 to 9999, not ${year}.`);
    }
    const two = (n: number): string => String(n).padStart(2, '0');
    text =
      String(year).padStart(4, '0') +
      two(date.getUTCMonth() + 1) +
      two(date.getUTCDate()) +
      two(date.getUTCHours()) +
      two(date.getUTCMinutes()) +
      two(date.getUTCSeconds()) +
      two(Math.floor(date.getUTCMilliseconds() / 10));
  }
  for (let i = 0; i < 16; i++) buf[at + i] = text.charCodeAt(i);
  buf[at + 16] = 0;
}

/** An ASCII field of `length` bytes, padded with spaces (ECMA-119 a- and d-character fields). */
export function putAsciiField(buf: Uint8Array, at: number, length: number, text: string): void {
  for (let i = 0; i < length; i++) buf[at + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/** A UCS-2 big-endian field of `length` bytes, padded with UCS-2 spaces (Joliet). */
export function putUcs2Field(buf: Uint8Array, at: number, length: number, text: string): void {
  const units = Math.floor(length / 2);
  for (let i = 0; i < units; i++)
    putBe16(buf, at + 2 * i, i < text.length ? text.charCodeAt(i) : 0x20);
}

/** UCS-2 big-endian bytes of a string made only of BMP characters (no surrogates). */
export function ucs2(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) putBe16(out, 2 * i, text.charCodeAt(i));
  return out;
}

export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

export function sectorsFor(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}
