/**
 * readIso: lists an ISO 9660 image through a random-access read function, for our tests
 * and for restores. It walks one tree: Rock Ridge when the root's "." record has SP (real
 * names from NM, modes from PX, mtimes from TF, continuation areas followed), else Joliet
 * when a "%/@", "%/C" or "%/E" descriptor exists, else the primary names (version and a
 * trailing dot dropped). A file's consecutive multi-extent records are merged into one
 * entry with all its extents. Not handled: Rock Ridge relocated directories (RE/CL),
 * symbolic links, interleaving, extended attribute records, and images from more than one
 * session.
 */
import { KinvaultError } from '@kinvault/protocol';
import { getBe16, getLe32, getRecordDate, SECTOR } from './encoding.js';
import type { IsoExtent } from './plan.js';

/** Bytes [offset, offset + length) of the image (exactly `length` of them). */
export type IsoRead = (offset: number, length: number) => Promise<Uint8Array>;

export type IsoTreeKind = 'rockridge' | 'joliet' | 'primary';

export interface IsoListedEntry {
  /** '/'-separated, relative to the root. */
  path: string;
  type: 'file' | 'directory';
  /** Bytes (the sum of the extents for a file; the directory's data length for a directory). */
  size: number;
  mtime: Date;
  /** Permission bits from Rock Ridge PX; undefined in the other trees. */
  mode?: number;
  extents: IsoExtent[];
}

export interface IsoListing {
  tree: IsoTreeKind;
  volumeId: string;
  volumeSectors: number;
  /** Depth-first, each directory before its contents, in directory-record order. */
  entries: IsoListedEntry[];
}

const FLAG_DIRECTORY = 0x02;
const FLAG_MULTI_EXTENT = 0x80;
const MAX_DESCRIPTORS = 64;

export async function readIso(
  read: IsoRead,
  options: { tree?: IsoTreeKind } = {},
): Promise<IsoListing> {
  const { primary, joliet } = await readDescriptors(read);
  const primaryRoot = rootOf(primary);
  const rootSector = await read(primaryRoot.lba * SECTOR, SECTOR);
  const hasRockRidge = rootHasSp(rootSector);
  const tree = options.tree ?? (hasRockRidge ? 'rockridge' : joliet ? 'joliet' : 'primary');
  if (tree === 'rockridge' && !hasRockRidge)
    throw corrupt('The image has no Rock Ridge (no SP entry in its root).');
  if (tree === 'joliet' && !joliet) throw corrupt('The image has no Joliet descriptor.');
  const root = tree === 'joliet' ? rootOf(joliet!) : primaryRoot;
  const entries: IsoListedEntry[] = [];
  await walk(read, tree, root, '', entries, 1);
  return {
    tree,
    volumeId: new TextDecoder('latin1').decode(primary.subarray(40, 72)).trimEnd(),
    volumeSectors: getLe32(primary, 80),
    entries,
  };
}

async function readDescriptors(
  read: IsoRead,
): Promise<{ primary: Uint8Array; joliet: Uint8Array | null }> {
  let primary: Uint8Array | null = null;
  let joliet: Uint8Array | null = null;
  for (let lba = 16; lba < 16 + MAX_DESCRIPTORS; lba++) {
    const d = await read(lba * SECTOR, SECTOR);
    if (String.fromCharCode(...d.subarray(1, 6)) !== 'CD001')
      throw corrupt(`No volume descriptor at sector ${lba}.`);
    if (d[0] === 255) break;
    if (d[0] === 1 && !primary) primary = d;
    const escape = String.fromCharCode(...d.subarray(88, 91));
    if (d[0] === 2 && !joliet && ['%/@', '%/C', '%/E'].includes(escape)) joliet = d;
  }
  if (!primary) throw corrupt('The image has no primary volume descriptor.');
  return { primary, joliet };
}

interface Extent {
  lba: number;
  length: number;
}

function rootOf(descriptor: Uint8Array): Extent {
  return { lba: getLe32(descriptor, 156 + 2), length: getLe32(descriptor, 156 + 10) };
}

function systemUseStart(record: Uint8Array, at: number): number {
  const idLength = record[at + 32]!;
  return at + 33 + idLength + (idLength % 2 === 0 ? 1 : 0);
}

function rootHasSp(sector: Uint8Array): boolean {
  const s = systemUseStart(sector, 0);
  return (
    sector[s] === 0x53 && sector[s + 1] === 0x50 && sector[s + 4] === 0xbe && sector[s + 5] === 0xef
  );
}

interface Parsed {
  identifier: Uint8Array;
  flags: number;
  extent: Extent;
  date: Date;
  systemUse: Uint8Array;
}

function* records(dir: Uint8Array): Generator<Parsed> {
  let at = 0;
  while (at < dir.length) {
    const length = dir[at]!;
    if (length === 0) {
      at = (Math.floor(at / SECTOR) + 1) * SECTOR;
      continue;
    }
    if (length < 34 || at + length > dir.length)
      throw corrupt('A directory record runs past its directory.');
    const idLength = dir[at + 32]!;
    yield {
      identifier: dir.subarray(at + 33, at + 33 + idLength),
      flags: dir[at + 25]!,
      extent: { lba: getLe32(dir, at + 2), length: getLe32(dir, at + 10) },
      date: getRecordDate(dir, at + 18),
      systemUse: dir.subarray(systemUseStart(dir, at), at + length),
    };
    at += length;
  }
}

async function walk(
  read: IsoRead,
  tree: IsoTreeKind,
  dir: Extent,
  prefix: string,
  out: IsoListedEntry[],
  level: number,
): Promise<void> {
  if (level > 64) throw corrupt('Directories nest deeper than 64 levels (a loop?).');
  const bytes = await read(dir.lba * SECTOR, dir.length);
  let pending: IsoListedEntry | null = null;
  for (const r of records(bytes)) {
    if (r.identifier.length === 1 && r.identifier[0]! <= 1) continue;
    const extent = { lba: r.extent.lba, length: r.extent.length };
    if (pending) {
      pending.extents.push(extent);
      pending.size += extent.length;
    } else {
      const info = tree === 'rockridge' ? await rockRidge(read, r.systemUse) : {};
      const name = info.name ?? isoName(r.identifier, tree === 'joliet');
      pending = {
        path: prefix + name,
        type: r.flags & FLAG_DIRECTORY ? 'directory' : 'file',
        size: extent.length,
        mtime: info.mtime ?? r.date,
        ...(info.mode === undefined ? {} : { mode: info.mode }),
        extents: [extent],
      };
    }
    if (r.flags & FLAG_MULTI_EXTENT) continue;
    const done: IsoListedEntry = pending;
    pending = null;
    out.push(done);
    if (done.type === 'directory') await walk(read, tree, extent, `${done.path}/`, out, level + 1);
  }
  if (pending)
    throw corrupt(`${pending.path}: the last record of a directory says more extents follow.`);
}

function isoName(identifier: Uint8Array, joliet: boolean): string {
  let name = '';
  if (joliet) {
    for (let i = 0; i + 1 < identifier.length; i += 2)
      name += String.fromCharCode(getBe16(identifier, i));
  } else {
    name = String.fromCharCode(...identifier);
  }
  const semi = name.lastIndexOf(';');
  if (semi >= 0) name = name.slice(0, semi);
  return !joliet && name.endsWith('.') ? name.slice(0, -1) : name;
}

interface RockRidgeInfo {
  name?: string;
  mode?: number;
  mtime?: Date;
}

/** NM, PX and TF of one record, following CE entries (at most 16 areas). */
async function rockRidge(read: IsoRead, systemUse: Uint8Array): Promise<RockRidgeInfo> {
  const info: RockRidgeInfo = {};
  const nameParts: Uint8Array[] = [];
  let area: Uint8Array | null = systemUse;
  for (let areas = 0; area && areas < 16; areas++) {
    let next: (Extent & { offset: number }) | null = null;
    for (let at = 0; at + 4 <= area.length;) {
      const length = area[at + 2]!;
      if (length < 4 || at + length > area.length) break;
      const sig = String.fromCharCode(area[at]!, area[at + 1]!);
      if (sig === 'ST') break;
      if (sig === 'NM' && (area[at + 4]! & 0x06) === 0)
        nameParts.push(area.subarray(at + 5, at + length));
      if (sig === 'PX') info.mode = getLe32(area, at + 4) & 0o7777;
      if (sig === 'TF') info.mtime = tfModify(area.subarray(at, at + length)) ?? info.mtime;
      if (sig === 'CE') {
        next = {
          lba: getLe32(area, at + 4),
          offset: getLe32(area, at + 12),
          length: getLe32(area, at + 20),
        };
      }
      at += length;
    }
    area = next ? await read(next.lba * SECTOR + next.offset, next.length) : null;
  }
  if (nameParts.length > 0) info.name = new TextDecoder().decode(concat(nameParts));
  return info;
}

function tfModify(tf: Uint8Array): Date | undefined {
  const flags = tf[4]!;
  const size = flags & 0x80 ? 17 : 7;
  let at = 5;
  for (let bit = 0; bit < 7; bit++) {
    if (!(flags & (1 << bit))) continue;
    if (bit === 1) return size === 7 ? getRecordDate(tf, at) : longDate(tf, at);
    at += size;
  }
  return undefined;
}

function longDate(buf: Uint8Array, at: number): Date {
  const digits = String.fromCharCode(...buf.subarray(at, at + 16));
  const n = (from: number, to: number): number => Number(digits.slice(from, to));
  const offset = ((buf[at + 16]! << 24) >> 24) * 15 * 60_000;
  return new Date(
    Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14), n(14, 16) * 10) -
      offset,
  );
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function corrupt(message: string): KinvaultError {
  return new KinvaultError('INVALID_ARGUMENT', `Not a readable ISO 9660 image: ${message}`);
}
