/**
 * Phase one of a backup: walk the paths, apply excludes, and compare every file with
 * the parent snapshot (size, mtime, ctime, inode): unchanged files keep their chunk
 * list and are not read. The result is an in-memory tree with totals for progress.
 */
import { lstatSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import pLimit from 'p-limit';
import { join, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import type { Tree, TreeNode } from '@kinvault/format';

export const DEFAULT_EXCLUDES = [
  '.DS_Store',
  '._*',
  '.Spotlight-V100',
  '.Trashes',
  '.fseventsd',
  '.TemporaryItems',
  'Thumbs.db',
  'ehthumbs.db',
  'desktop.ini',
  '$RECYCLE.BIN',
  '.kinvault-restore-*',
];

interface Meta {
  name: string;
  path: string;
  mode: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  inode: bigint;
  uid: number;
  gid: number;
}
export interface ScanFile extends Meta {
  kind: 'file';
  size: number;
  /** Chunk ids from the parent snapshot when the file is unchanged. */
  reuse: Uint8Array[] | null;
}
export interface ScanLink extends Meta {
  kind: 'symlink';
  target: string;
}
export interface ScanDir extends Meta {
  kind: 'dir';
  children: ScanEntry[];
  /** This directory's tree in the parent snapshot, if it had one. */
  parentTree: Uint8Array | null;
}
export type ScanEntry = ScanFile | ScanLink | ScanDir;

export interface ScanTotals {
  files: number;
  dirs: number;
  bytes: number;
  changedFiles: number;
  changedBytes: number;
}

export interface ScanResult {
  root: ScanDir;
  totals: ScanTotals;
  errors: { path: string; message: string }[];
}

/** Looks up the parent snapshot's tree for a directory (null when there is none). */
export type ParentTrees = (subtree: Uint8Array) => Promise<Tree>;

type Matcher = (path: string, name: string) => boolean;

function compile(patterns: readonly string[], base: string): Matcher {
  const byName = patterns.filter((p) => !p.includes('/'));
  const byPath = patterns
    .filter((p) => p.includes('/'))
    .map((p) => (p.startsWith('/') ? p : `${base}/${p}`));
  const name = byName.length ? picomatch(byName, { dot: true }) : () => false;
  const path = byPath.length ? picomatch(byPath, { dot: true }) : () => false;
  return (p, n) => name(n) || path(p);
}

function ignoreFile(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync(join(dir, '.kinvaultignore'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

function meta(name: string, path: string, st: BigIntStats): Meta {
  return {
    name,
    path,
    mode: Number(st.mode & 0o7777n),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

export async function scan(
  paths: readonly string[],
  excludes: readonly string[],
  parentRoot: Uint8Array | null,
  parentTree: ParentTrees,
): Promise<ScanResult> {
  const totals: ScanTotals = { files: 0, dirs: 0, bytes: 0, changedFiles: 0, changedBytes: 0 };
  const errors: ScanResult['errors'] = [];
  const global = compile([...DEFAULT_EXCLUDES, ...excludes], '');
  const rootMeta = meta('', '/', await lstat('/', { bigint: true }));
  const root: ScanDir = { ...rootMeta, kind: 'dir', children: [], parentTree: parentRoot };

  const parentNodes = async (subtree: Uint8Array | null): Promise<Map<string, TreeNode>> => {
    if (!subtree) return new Map();
    try {
      return new Map((await parentTree(subtree)).nodes.map((n) => [n.name, n]));
    } catch {
      return new Map(); // an unreadable parent only costs re-reading files
    }
  };

  // Directories are listed a few at a time (that overlaps a slow disk's latency); the
  // entries themselves are examined with synchronous lstat calls, which cost a few
  // microseconds where a thread-pool round trip per entry costs tens.
  const listing = pLimit(8);

  async function visitDir(
    dir: ScanDir,
    parent: Uint8Array | null,
    local: Matcher[],
  ): Promise<void> {
    totals.dirs++;
    let names: string[];
    try {
      names = (await listing(() => readdir(dir.path))).sort();
    } catch (e) {
      errors.push({ path: dir.path, message: (e as Error).message });
      return;
    }
    const here = names.includes('.kinvaultignore')
      ? [...local, compile(ignoreFile(dir.path), dir.path === '/' ? '' : dir.path)]
      : local;
    const previous = await parentNodes(parent);
    const subdirs: Promise<void>[] = [];
    for (const name of names) {
      const path = dir.path === '/' ? `/${name}` : `${dir.path}/${name}`;
      if (global(path, name) || here.some((m) => m(path, name))) continue;
      if (Buffer.from(name, 'utf8').toString('utf8') !== name || name.includes('\uFFFD')) {
        errors.push({
          path,
          message: 'the name is not valid UTF-8 and cannot be stored; rename it',
        });
        continue;
      }
      const sub = visit(dir, path, name, previous.get(name) ?? null);
      if (sub) subdirs.push(visitDir(sub, sub.parentTree, here));
    }
    await Promise.all(subdirs);
  }

  /** Adds one entry to `into`; returns it when it is a directory still to be visited. */
  function visit(into: ScanDir, path: string, name: string, prev: TreeNode | null): ScanDir | null {
    let st;
    try {
      st = lstatSync(path, { bigint: true });
    } catch (e) {
      errors.push({ path, message: (e as Error).message });
      return null;
    }
    const m = meta(name, path, st);
    if (st.isDirectory()) {
      const dir: ScanDir = {
        ...m,
        kind: 'dir',
        children: [],
        parentTree: prev?.kind === 'dir' ? prev.subtree : null,
      };
      into.children.push(dir);
      return dir;
    } else if (st.isFile()) {
      const size = Number(st.size);
      const same =
        prev?.kind === 'file' &&
        prev.size === size &&
        prev.mtimeNs === m.mtimeNs &&
        prev.ctimeNs === m.ctimeNs &&
        prev.inode === m.inode;
      into.children.push({ ...m, kind: 'file', size, reuse: same ? [...prev.chunks] : null });
      totals.files++;
      totals.bytes += size;
      if (!same) {
        totals.changedFiles++;
        totals.changedBytes += size;
      }
    } else if (st.isSymbolicLink()) {
      try {
        into.children.push({ ...m, kind: 'symlink', target: readlinkSync(path) });
      } catch (e) {
        errors.push({ path, message: (e as Error).message });
      }
    } else {
      errors.push({
        path,
        message: 'not a file, directory or symbolic link (a device, socket or pipe): not backed up',
      });
    }
    return null;
  }

  // Each path is placed at its absolute location under the root, through its ancestors.
  for (const raw of [...new Set(paths.map((p) => resolve(p)))].sort()) {
    const parts = raw.split(sep).filter(Boolean);
    let dir = root;
    let prev: Uint8Array | null = parentRoot;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      const path = '/' + parts.slice(0, i + 1).join('/');
      const prevNode = (await parentNodes(prev)).get(name) ?? null;
      if (i === parts.length - 1) {
        if (!dir.children.some((c) => c.name === name)) {
          const sub = visit(dir, path, name, prevNode);
          if (sub) await visitDir(sub, sub.parentTree, []);
        }
        break;
      }
      let next = dir.children.find((c): c is ScanDir => c.kind === 'dir' && c.name === name);
      if (!next) {
        const st = await lstat(path, { bigint: true });
        next = {
          ...meta(name, path, st),
          kind: 'dir',
          children: [],
          parentTree: prevNode?.kind === 'dir' ? prevNode.subtree : null,
        };
        dir.children.push(next);
      }
      dir = next;
      prev = prevNode?.kind === 'dir' ? prevNode.subtree : null;
    }
  }
  return { root, totals, errors };
}
