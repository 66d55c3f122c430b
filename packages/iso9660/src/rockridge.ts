/**
 * System Use entries of SUSP 1.12 and Rock Ridge (RRIP 1.12) that our records carry:
 * SP and ER (the root's "." record), PX (mode, links, owner 0:0, serial), TF (modify,
 * access and attribute-change times, 7-byte form), NM (the real name, UTF-8, split into
 * entries of at most 250 name bytes) and CE (where a record's continuation area is).
 */
import { putBoth32, putRecordDate } from './encoding.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

export const CE_LENGTH = 28;

function entry(signature: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out[0] = signature.charCodeAt(0);
  out[1] = signature.charCodeAt(1);
  out[2] = length;
  out[3] = 1;
  return out;
}

/** SP: SUSP is in use, no bytes skipped (SUSP 5.3). First entry of the root's "." record. */
export function sp(): Uint8Array {
  const out = entry('SP', 7);
  out[4] = 0xbe;
  out[5] = 0xef;
  out[6] = 0;
  return out;
}

const ER_ID = 'IEEE_1282';
const ER_DESCRIPTOR = 'THE IEEE 1282 PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS.';
const ER_SOURCE =
  'PLEASE CONTACT THE IEEE STANDARDS DEPARTMENT, PISCATAWAY, NJ, USA FOR THE 1282 SPECIFICATION.';

/** ER: the extension in use is RRIP 1.12 (RRIP 4.3, SUSP 5.5). */
export function er(): Uint8Array {
  const out = entry('ER', 8 + ER_ID.length + ER_DESCRIPTOR.length + ER_SOURCE.length);
  out[4] = ER_ID.length;
  out[5] = ER_DESCRIPTOR.length;
  out[6] = ER_SOURCE.length;
  out[7] = 1;
  let at = 8;
  for (const ch of ER_ID + ER_DESCRIPTOR + ER_SOURCE) out[at++] = ch.charCodeAt(0);
  return out;
}

/** PX of RRIP 1.12 (44 bytes, with the file serial number). `permissions` are 0o7777 bits. */
export function px(
  isDirectory: boolean,
  permissions: number,
  links: number,
  serial: number,
): Uint8Array {
  const out = entry('PX', 44);
  putBoth32(out, 4, (isDirectory ? S_IFDIR : S_IFREG) | permissions);
  putBoth32(out, 12, links);
  putBoth32(out, 20, 0);
  putBoth32(out, 28, 0);
  putBoth32(out, 36, serial);
  return out;
}

const TF_MODIFY = 0x02;
const TF_ACCESS = 0x04;
const TF_ATTRIBUTES = 0x08;

/** TF with the modification, access and attribute-change times, all `mtime`. */
export function tf(mtime: Date): Uint8Array {
  const out = entry('TF', 5 + 3 * 7);
  out[4] = TF_MODIFY | TF_ACCESS | TF_ATTRIBUTES;
  for (let i = 0; i < 3; i++) putRecordDate(out, 5 + 7 * i, mtime);
  return out;
}

const NM_PART = 250;
const utf8 = new TextEncoder();

/** NM entries for `name`: all but the last have the CONTINUE flag (RRIP 4.1.4). */
export function nm(name: string): Uint8Array[] {
  const bytes = utf8.encode(name);
  const out: Uint8Array[] = [];
  for (let at = 0; at === 0 || at < bytes.length; at += NM_PART) {
    const part = bytes.subarray(at, at + NM_PART);
    const e = entry('NM', 5 + part.length);
    e[4] = at + NM_PART < bytes.length ? 0x01 : 0;
    e.set(part, 5);
    out.push(e);
  }
  return out;
}

/** CE: the continuation area at `lba`, byte `offset`, `length` bytes (SUSP 5.1). */
export function ce(lba: number, offset: number, length: number): Uint8Array {
  const out = entry('CE', CE_LENGTH);
  putBoth32(out, 4, lba);
  putBoth32(out, 12, offset);
  putBoth32(out, 20, length);
  return out;
}

export interface SystemUse {
  /** Entries in the directory record itself (a CE entry is added after them when `overflow` is not empty). */
  inline: Uint8Array[];
  /** Entries moved to the record's continuation area. */
  overflow: Uint8Array[];
}

/**
 * Splits a record's entries between the record (`room` bytes) and a continuation area:
 * all inline when they fit; else the longest prefix that fits with a CE entry after it,
 * and the rest in the continuation area. Order is kept (SP stays first).
 */
export function splitSystemUse(entries: Uint8Array[], room: number): SystemUse {
  const total = entries.reduce((sum, e) => sum + e.length, 0);
  if (total <= room) return { inline: entries, overflow: [] };
  let used = CE_LENGTH;
  let cut = 0;
  while (cut < entries.length && used + entries[cut]!.length <= room)
    used += entries[cut++]!.length;
  return { inline: entries.slice(0, cut), overflow: entries.slice(cut) };
}
