/**
 * Hard links. A v1 tree keeps each file's inode number and ctime (for change detection),
 * so entries of one snapshot that share inode, ctime, mtime, size, mode, owner and chunk
 * list were one file on disk when the backup read them (one run stats every path). A
 * restore writes the first such path and makes the others links to it. The format is
 * unchanged; design.md §14.4 says what could be linked wrongly (nothing whose contents
 * differ).
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  linkSync,
  lstatSync,
  rmSync,
  utimesSync,
} from 'node:fs';
import { toHex, type FileNode } from '@kinvault/format';

/** What makes two entries the same file (the inode is compared first). */
function identity(n: FileNode): string {
  return [n.ctimeNs, n.mtimeNs, n.size, n.mode, n.uid, n.gid, ...n.chunks.map(toHex)].join(' ');
}

/**
 * Splits `files` into the ones to write and the ones to link to one of those (`to`).
 * The first path of a group (in code-unit order) is written. Inode 0 means "unknown".
 */
export function findHardLinks<T extends { path: string; node: FileNode }>(
  files: readonly T[],
): { write: T[]; links: { file: T; to: T }[] } {
  const byInode = new Map<bigint, T[]>();
  for (const f of files) {
    if (f.node.inode === 0n) continue;
    const same = byInode.get(f.node.inode);
    if (same) same.push(f);
    else byInode.set(f.node.inode, [f]);
  }
  const linked = new Set<T>();
  const links: { file: T; to: T }[] = [];
  for (const candidates of byInode.values()) {
    if (candidates.length < 2) continue;
    const groups = new Map<string, T[]>();
    for (const f of candidates) {
      const key = identity(f.node);
      const g = groups.get(key);
      if (g) g.push(f);
      else groups.set(key, [f]);
    }
    for (const g of groups.values()) {
      if (g.length < 2) continue;
      g.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      for (const f of g.slice(1)) {
        links.push({ file: f, to: g[0]! });
        linked.add(f);
      }
    }
  }
  return { write: linked.size ? files.filter((f) => !linked.has(f)) : [...files], links };
}

/** System errors that mean "this filesystem makes no hard link here": copy instead. */
const NO_LINKS = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);

/**
 * Makes `path` the same file as the restored `to`, through `tmp` (then `place(tmp,
 * path)` moves it over whatever is there). Returns 'kept' when it already was, 'linked',
 * or 'copied' on a filesystem without hard links (the copy gets `mode` and `mtime`, a
 * `utimeArg`).
 */
export function linkInto(
  to: string,
  path: string,
  tmp: string,
  copied: { mode: number; mtime: string },
  place: (tmp: string, path: string) => void,
): 'kept' | 'linked' | 'copied' {
  const target = lstatSync(to);
  const there = lstatSync(path, { throwIfNoEntry: false });
  if (there && there.ino === target.ino && there.dev === target.dev) return 'kept';
  let how: 'linked' | 'copied' = 'linked';
  try {
    linkSync(to, tmp);
  } catch (e) {
    if (!NO_LINKS.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
    how = 'copied';
    try {
      copyFileSync(to, tmp, constants.COPYFILE_EXCL);
      chmodSync(tmp, copied.mode);
      utimesSync(tmp, copied.mtime, copied.mtime);
    } catch (copyError) {
      rmSync(tmp, { force: true });
      throw copyError;
    }
  }
  place(tmp, path);
  return how;
}
