/**
 * planIso: the whole layout of a volume from its entries, without any file bytes.
 *
 * Layout, in sectors of 2048 bytes:
 *   0–15 system area (zero) · 16 primary descriptor · 17 Joliet descriptor · 18 terminator
 *   · primary L and M path tables · Joliet L and M path tables · primary directories
 *   (path-table order), each followed by its records' Rock Ridge continuation areas ·
 *   Joliet directories · file data,
 *   in the order of the input entries, each file in consecutive sectors from a sector
 *   start, so a file is one byte range [offset, offset + size) of the image.
 */
import { KinvaultError } from '@kinvault/protocol';
import { ascii, SECTOR, sectorsFor, ucs2 } from './encoding.js';
import type { DescriptorText } from './descriptors.js';
import {
  comparePrimary,
  compareStrings,
  jolietIdentifiers,
  primaryIdentifiers,
  toDChars,
  toJolietChars,
} from './names.js';
import { orderDirectories, pathTableSize, type PathTableDir } from './path-table.js';
import {
  FLAG_DIRECTORY,
  FLAG_MULTI_EXTENT,
  makeRecord,
  packRecords,
  type DirRecord,
} from './records.js';
import { er, nm, px, sp, tf } from './rockridge.js';
import {
  buildTree,
  checkDate,
  type DirNode,
  type FileNode,
  type IsoEntry,
  type Node,
} from './tree.js';

export interface IsoOptions {
  /** Volume name. The primary descriptor gets it in d-characters (A–Z 0–9 _, at most 32), Joliet as given (at most 16 characters). */
  volumeId: string;
  /** The volume's creation time (descriptors, and implied directories' times). */
  created: Date;
  systemId?: string;
  volumeSetId?: string;
  publisherId?: string;
  preparerId?: string;
  applicationId?: string;
}

export interface IsoExtent {
  lba: number;
  /** Bytes. */
  length: number;
}

export interface IsoPlannedFile {
  path: string;
  /** Byte offset of the file's data in the image (its first extent's sector × 2048). */
  offset: number;
  size: number;
  /** Consecutive: each starts where the previous one ends. An empty file has one extent of length 0. */
  extents: IsoExtent[];
}

export interface IsoPlan {
  /** Bytes of the whole image (a multiple of 2048). */
  size: number;
  /** Byte offset where file data begins (everything before it is metadata). */
  dataOffset: number;
  /** In the order of the input's file entries, which is their order in the image. */
  files: IsoPlannedFile[];
}

/** Largest extent of a multi-extent file: 4 GiB − 2048, a whole number of sectors. */
export const MAX_EXTENT = 0xfffff800;
const MAX_SECTORS = 0xffffffff;
const MAX_DIRECTORIES = 0xffff;
export const FIRST_DESCRIPTOR_LBA = 16;

/** What writeIso needs besides the public plan. */
export interface Layout {
  created: Date;
  text: { primary: DescriptorText; joliet: DescriptorText };
  volumeSectors: number;
  primary: TreeLayout;
  joliet: TreeLayout;
}

export interface TreeLayout {
  dirs: PathTableDir<DirNode>[];
  pathTableSize: number;
  lPathTableLba: number;
  mPathTableLba: number;
  pathTableSectors: number;
  /** Per directory, in path-table order. */
  records: DirRecord[][];
  lbas: number[];
  /** Sectors of each directory's records (its data length). */
  sectors: number[];
  /**
   * Sectors of each directory's Rock Ridge continuation areas, right after its records:
   * libarchive reads a continuation area only when it directly follows the directory
   * being read (it reads the image as a stream).
   */
  continuationSectors: number[];
  /** Parallel to `records`: what each record points at. */
  targets: Target[][];
  /** The root's record for the volume descriptor. */
  rootRecord: DirRecord;
}

const layouts = new WeakMap<IsoPlan, Layout>();

export function layoutOf(plan: IsoPlan): Layout {
  const layout = layouts.get(plan);
  if (!layout) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      'writeIso takes a plan made by planIso in this process.',
    );
  }
  return layout;
}

export function planIso(entries: readonly IsoEntry[], options: IsoOptions): IsoPlan {
  const created = checkDate(options.created, 'options.created');
  if (created.getUTCFullYear() < 1900 || created.getUTCFullYear() > 9999) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      'options.created must be in the years 1900 to 9999.',
    );
  }
  const { root, files } = buildTree(entries, created);
  const names = nameTree(root);
  const primaryDirs = orderDirectories(
    root,
    (d) => names.primaryChildren.get(d)!.filter(isDir),
    (d) => ascii(names.primaryId.get(d)!),
  );
  const jolietDirs = orderDirectories(
    root,
    (d) => names.jolietChildren.get(d)!.filter(isDir),
    (d) => ucs2(names.jolietId.get(d)!),
  );
  if (primaryDirs.length > MAX_DIRECTORIES) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `A volume holds at most ${MAX_DIRECTORIES} directories (path tables number them in 16 bits), not ${primaryDirs.length}.`,
    );
  }
  assignSerials(primaryDirs, files);
  const primaryRecords = primaryDirs.map(({ dir }) => primaryDirectoryRecords(dir, names));
  const jolietRecords = jolietDirs.map(({ dir }) => jolietDirectoryRecords(dir, names));

  let lba = FIRST_DESCRIPTOR_LBA + 3;
  const primary = treeLayout(primaryDirs, primaryRecords);
  const joliet = treeLayout(jolietDirs, jolietRecords);
  for (const t of [primary, joliet]) {
    t.lPathTableLba = lba;
    t.mPathTableLba = lba + t.pathTableSectors;
    lba += 2 * t.pathTableSectors;
  }
  for (const t of [primary, joliet]) {
    for (let i = 0; i < t.dirs.length; i++) {
      t.lbas[i] = lba;
      lba += t.sectors[i]!;
      t.continuationSectors[i] = placeContinuations(t.records[i]!, lba);
      lba += t.continuationSectors[i]!;
    }
  }
  const dataOffset = lba * SECTOR;

  const extents = new Map<FileNode, IsoExtent[]>();
  for (const file of files) {
    extents.set(file, splitExtents(file.size, file.size === 0 ? 0 : lba));
    lba += sectorsFor(file.size);
    if (lba > MAX_SECTORS) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        'The volume would be larger than ISO 9660 allows (8 TiB).',
      );
    }
  }
  resolveExtents(primary, extents);
  resolveExtents(joliet, extents);

  const plan: IsoPlan = {
    size: lba * SECTOR,
    dataOffset,
    files: files.map((file) => {
      const ext = extents.get(file)!;
      return { path: file.path, offset: ext[0]!.lba * SECTOR, size: file.size, extents: ext };
    }),
  };
  layouts.set(plan, {
    created,
    text: descriptorText(options),
    volumeSectors: lba,
    primary,
    joliet,
  });
  return plan;
}

const isDir = (node: Node): node is DirNode => node.kind === 'dir';

interface Names {
  primaryId: Map<Node, string>;
  jolietId: Map<Node, string>;
  primaryChildren: Map<DirNode, Node[]>;
  jolietChildren: Map<DirNode, Node[]>;
}

/** Identifiers of every node in both trees, and each directory's children sorted both ways. */
function nameTree(root: DirNode): Names {
  const names: Names = {
    primaryId: new Map(),
    jolietId: new Map(),
    primaryChildren: new Map(),
    jolietChildren: new Map(),
  };
  const stack: DirNode[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const requests = dir.children.map((c) => ({ name: c.name, isDirectory: c.kind === 'dir' }));
    const p = primaryIdentifiers(requests);
    const j = jolietIdentifiers(requests);
    dir.children.forEach((child, i) => {
      names.primaryId.set(child, p[i]!);
      names.jolietId.set(child, j[i]!);
      if (child.kind === 'dir') stack.push(child);
    });
    names.primaryChildren.set(
      dir,
      [...dir.children].sort((a, b) =>
        comparePrimary(names.primaryId.get(a)!, names.primaryId.get(b)!),
      ),
    );
    names.jolietChildren.set(
      dir,
      [...dir.children].sort((a, b) =>
        compareStrings(names.jolietId.get(a)!, names.jolietId.get(b)!),
      ),
    );
  }
  return names;
}

/** Rock Ridge serial numbers: directories 1… in path-table order, then files in input order. */
function assignSerials(dirs: readonly PathTableDir<DirNode>[], files: readonly FileNode[]): void {
  let serial = 1;
  for (const { dir } of dirs) dir.serial = serial++;
  for (const file of files) file.serial = serial++;
}

function links(dir: DirNode): number {
  return 2 + dir.children.filter(isDir).length;
}

function dirSystemUse(dir: DirNode): Uint8Array[] {
  return [px(true, dir.mode, links(dir), dir.serial), tf(dir.mtime)];
}

/** What a record points at: a directory, or one extent of a file. */
type Target = { dir: DirNode } | { file: FileNode; extent: number };

interface DirRecords {
  records: DirRecord[];
  targets: Target[];
}

/** Records of one primary directory: ".", "..", then its children (a file once per extent). */
function primaryDirectoryRecords(dir: DirNode, names: Names): DirRecords {
  const parent = dir.parent ?? dir;
  // The root's "." record starts with SP and announces Rock Ridge with ER (SUSP 5.3, 5.5).
  const self = dir.parent === null ? [sp(), ...dirSystemUse(dir), er()] : dirSystemUse(dir);
  const out: DirRecords = {
    records: [
      makeRecord(new Uint8Array([0]), FLAG_DIRECTORY, dir.mtime, self),
      makeRecord(new Uint8Array([1]), FLAG_DIRECTORY, parent.mtime, dirSystemUse(parent)),
    ],
    targets: [{ dir }, { dir: parent }],
  };
  for (const child of names.primaryChildren.get(dir)!) {
    const id = ascii(names.primaryId.get(child)!);
    if (child.kind === 'dir') {
      const su = [...dirSystemUse(child), ...nm(child.name)];
      out.records.push(makeRecord(id, FLAG_DIRECTORY, child.mtime, su));
      out.targets.push({ dir: child });
      continue;
    }
    const count = extentCount(child.size);
    for (let i = 0; i < count; i++) {
      const su = [px(false, child.mode, 1, child.serial), tf(child.mtime), ...nm(child.name)];
      out.records.push(makeRecord(id, i < count - 1 ? FLAG_MULTI_EXTENT : 0, child.mtime, su));
      out.targets.push({ file: child, extent: i });
    }
  }
  return out;
}

function jolietDirectoryRecords(dir: DirNode, names: Names): DirRecords {
  const parent = dir.parent ?? dir;
  const out: DirRecords = {
    records: [
      makeRecord(new Uint8Array([0]), FLAG_DIRECTORY, dir.mtime, []),
      makeRecord(new Uint8Array([1]), FLAG_DIRECTORY, parent.mtime, []),
    ],
    targets: [{ dir }, { dir: parent }],
  };
  for (const child of names.jolietChildren.get(dir)!) {
    const id = ucs2(names.jolietId.get(child)!);
    if (child.kind === 'dir') {
      out.records.push(makeRecord(id, FLAG_DIRECTORY, child.mtime, []));
      out.targets.push({ dir: child });
      continue;
    }
    const count = extentCount(child.size);
    for (let i = 0; i < count; i++) {
      out.records.push(makeRecord(id, i < count - 1 ? FLAG_MULTI_EXTENT : 0, child.mtime, []));
      out.targets.push({ file: child, extent: i });
    }
  }
  return out;
}

function treeLayout(dirs: PathTableDir<DirNode>[], dirRecords: DirRecords[]): TreeLayout {
  const size = pathTableSize(dirs);
  const records = dirRecords.map((d) => d.records);
  return {
    dirs,
    pathTableSize: size,
    pathTableSectors: sectorsFor(size),
    lPathTableLba: 0,
    mPathTableLba: 0,
    records,
    targets: dirRecords.map((d) => d.targets),
    lbas: [],
    continuationSectors: [],
    sectors: records.map((r) => packRecords(r).sectors),
    rootRecord: makeRecord(new Uint8Array([0]), FLAG_DIRECTORY, dirs[0]!.dir.mtime, []),
  };
}

/**
 * Places continuation areas one after another, each inside one sector (an area that does
 * not fit in what is left of a sector starts the next one). Returns the sectors used.
 */
function placeContinuations(records: readonly DirRecord[], firstLba: number): number {
  let at = 0;
  for (const record of records) {
    const area = record.continuation;
    if (!area) continue;
    if (area.length > SECTOR)
      throw new Error('A continuation area above one sector (internal error).');
    if ((at % SECTOR) + area.length > SECTOR) at += SECTOR - (at % SECTOR);
    area.lba = firstLba + Math.floor(at / SECTOR);
    area.offset = at % SECTOR;
    at += area.length;
  }
  return sectorsFor(at);
}

function extentCount(size: number): number {
  return Math.max(1, Math.ceil(size / MAX_EXTENT));
}

function splitExtents(size: number, lba: number): IsoExtent[] {
  const out: IsoExtent[] = [];
  let left = size;
  do {
    const length = Math.min(left, MAX_EXTENT);
    out.push({ lba, length });
    lba += length / SECTOR;
    left -= length;
  } while (left > 0);
  return out;
}

/** Fills in each record's extent: its directory's, or its file extent's. */
function resolveExtents(t: TreeLayout, files: Map<FileNode, IsoExtent[]>): void {
  const dirIndex = new Map<DirNode, number>(t.dirs.map(({ dir }, i) => [dir, i]));
  const extentOf = (target: Target): IsoExtent => {
    if ('file' in target) return files.get(target.file)![target.extent]!;
    const i = dirIndex.get(target.dir)!;
    return { lba: t.lbas[i]!, length: t.sectors[i]! * SECTOR };
  };
  t.records.forEach((records, i) => {
    records.forEach((record, k) => {
      const extent = extentOf(t.targets[i]![k]!);
      record.lba = extent.lba;
      record.dataLength = extent.length;
    });
  });
  t.rootRecord.lba = t.lbas[0]!;
  t.rootRecord.dataLength = t.sectors[0]! * SECTOR;
}

function descriptorText(options: IsoOptions): { primary: DescriptorText; joliet: DescriptorText } {
  const raw = {
    systemId: options.systemId ?? '',
    volumeId: options.volumeId,
    volumeSetId: options.volumeSetId ?? '',
    publisherId: options.publisherId ?? '',
    preparerId: options.preparerId ?? '',
    applicationId: options.applicationId ?? '',
  };
  const primary = { ...raw };
  const joliet = { ...raw };
  for (const key of Object.keys(raw) as (keyof DescriptorText)[]) {
    const short = key === 'systemId' || key === 'volumeId';
    const limit = short ? 32 : 128;
    primary[key] = (key === 'volumeId' ? toDChars(raw[key]) : toAChars(raw[key])).slice(0, limit);
    joliet[key] = toJolietChars(raw[key]).slice(0, limit / 2);
  }
  return { primary, joliet };
}

/** ECMA-119 a-characters: upper-case letters, digits, space and !"%&'()*+,-./:;<=>?_ . */
function toAChars(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.toUpperCase();
    out += c.length === 1 && /[A-Z0-9 !"%&'()*+,\-./:;<=>?_]/.test(c) ? c : '_';
  }
  return out;
}
