/**
 * The directory tree of a volume, built from the caller's entries and checked: paths are
 * relative, '/'-separated, without empty, '.' or '..' components; each name is well-formed
 * Unicode of at most 255 UTF-8 bytes; no path is given twice or is both a file and a
 * directory; directories are at most 8 levels deep (the root is level 1, ECMA-119 6.8.2.1).
 */
import { KinvaultError } from '@kinvault/protocol';

export interface IsoFileEntry {
  /** Relative path, '/'-separated, e.g. 'packs/ab/<64 hex>'. */
  path: string;
  /** Bytes; any safe integer (files above 4 GiB − 2048 are recorded in several extents). */
  size: number;
  mtime: Date;
  /** Permission bits (0o7777 is kept, file-type bits are ignored); default 0o644. */
  mode?: number;
  directory?: false;
}

/** A directory given explicitly (so that empty directories exist, or to set its attributes). */
export interface IsoDirectoryEntry {
  path: string;
  directory: true;
  /** Default: the volume's creation time. */
  mtime?: Date;
  /** Permission bits; default 0o755. */
  mode?: number;
}

export type IsoEntry = IsoFileEntry | IsoDirectoryEntry;

/** Directories may be at levels 1 (the root) to 8, so files at most 8 components deep. */
export const MAX_DIRECTORY_LEVEL = 8;
const MAX_NAME_BYTES = 255;

interface NodeBase {
  name: string;
  path: string;
  parent: DirNode | null;
  mtime: Date;
  /** Permission bits only. */
  mode: number;
  /** Rock Ridge file serial number (PX), unique in the volume. */
  serial: number;
}

export interface DirNode extends NodeBase {
  kind: 'dir';
  /** Root 1. */
  level: number;
  children: Node[];
}

export interface FileNode extends NodeBase {
  kind: 'file';
  size: number;
  /** Position among the file entries: the order of the data in the image. */
  order: number;
}

export type Node = DirNode | FileNode;

export interface Tree {
  root: DirNode;
  /** In the order of the input entries. */
  files: FileNode[];
}

export function buildTree(entries: readonly IsoEntry[], created: Date): Tree {
  const root: DirNode = newDir('', '', null, created);
  const byPath = new Map<string, Node>([['', root]]);
  const explicit = new Set<string>();
  const files: FileNode[] = [];

  const dirAt = (path: string): DirNode => {
    const found = byPath.get(path);
    if (found?.kind === 'dir') return found;
    if (found) throw invalid(`${path} is a file and also a directory of other entries.`, path);
    const cut = path.lastIndexOf('/');
    const parent = dirAt(cut < 0 ? '' : path.slice(0, cut));
    const dir = newDir(path.slice(cut + 1), path, parent, created);
    if (dir.level > MAX_DIRECTORY_LEVEL) {
      throw invalid(
        `${path} is a directory ${dir.level - 1} levels below the root; ISO 9660 allows ${MAX_DIRECTORY_LEVEL - 1} (files at most ${MAX_DIRECTORY_LEVEL} path components deep).`,
        path,
      );
    }
    parent.children.push(dir);
    byPath.set(path, dir);
    return dir;
  };

  for (const entry of entries) {
    checkPath(entry.path);
    const cut = entry.path.lastIndexOf('/');
    const parentPath = cut < 0 ? '' : entry.path.slice(0, cut);
    if (entry.directory === true) {
      if (explicit.has(entry.path)) throw invalid(`${entry.path} is given twice.`, entry.path);
      if (byPath.get(entry.path)?.kind === 'file') {
        throw invalid(`${entry.path} is a file and also a directory.`, entry.path);
      }
      const dir = dirAt(entry.path);
      explicit.add(entry.path);
      if (entry.mtime !== undefined) dir.mtime = checkDate(entry.mtime, entry.path);
      if (entry.mode !== undefined) dir.mode = checkMode(entry.mode, entry.path);
      continue;
    }
    if (byPath.has(entry.path)) {
      const what =
        byPath.get(entry.path)!.kind === 'dir' ? 'a directory and also a file' : 'given twice';
      throw invalid(`${entry.path} is ${what}.`, entry.path);
    }
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) {
      throw invalid(
        `${entry.path}: the size must be a whole number of bytes, not ${entry.size}.`,
        entry.path,
      );
    }
    const parent = dirAt(parentPath);
    const file: FileNode = {
      kind: 'file',
      name: entry.path.slice(cut + 1),
      path: entry.path,
      parent,
      mtime: checkDate(entry.mtime, entry.path),
      mode: entry.mode === undefined ? 0o644 : checkMode(entry.mode, entry.path),
      serial: 0,
      size: entry.size,
      order: files.length,
    };
    parent.children.push(file);
    byPath.set(entry.path, file);
    files.push(file);
  }
  return { root, files };
}

function newDir(name: string, path: string, parent: DirNode | null, mtime: Date): DirNode {
  return {
    kind: 'dir',
    name,
    path,
    parent,
    mtime,
    mode: 0o755,
    serial: 0,
    level: parent ? parent.level + 1 : 1,
    children: [],
  };
}

const utf8 = new TextEncoder();

function checkPath(path: unknown): void {
  if (typeof path !== 'string' || path === '') throw invalid('An entry has no path.', String(path));
  for (const name of path.split('/')) {
    if (name === '' || name === '.' || name === '..') {
      throw invalid(
        `${path}: paths are relative, '/'-separated, without empty, '.' or '..' components.`,
        path,
      );
    }
    if (name.includes('\0') || !name.isWellFormed()) {
      throw invalid(`${path}: a name holds a NUL or is not well-formed Unicode.`, path);
    }
    if (utf8.encode(name).length > MAX_NAME_BYTES) {
      throw invalid(`${path}: a name is longer than ${MAX_NAME_BYTES} UTF-8 bytes.`, path);
    }
  }
}

export function checkDate(date: unknown, what: string): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw invalid(`${what}: the time is not a valid Date.`, what);
  }
  return date;
}

function checkMode(mode: number, path: string): number {
  if (!Number.isInteger(mode) || mode < 0)
    throw invalid(`${path}: the mode ${mode} is not valid.`, path);
  return mode & 0o7777;
}

export function invalid(message: string, path: string): KinvaultError {
  return new KinvaultError('INVALID_ARGUMENT', message, { details: { path } });
}
