/**
 * Path tables (ECMA-119 6.9, 9.4). Directories are numbered from 1 (the root) in the
 * table's order: by level, then by the number of the parent, then by identifier. That is
 * a breadth-first walk where each directory's subdirectories are taken in identifier
 * order, which is how `orderDirectories` numbers them. The L table has little-endian
 * numbers, the M table big-endian ones.
 */
import { putBe16, putBe32, putLe16, putLe32 } from './encoding.js';

export interface PathTableDir<D> {
  dir: D;
  /** Identifier bytes; [0] for the root. */
  identifier: Uint8Array;
  /** 1-based number of the parent (the root's parent is itself, 1). */
  parent: number;
}

/**
 * Numbers directories in path-table order. `subdirectories` must give a directory's
 * subdirectories in identifier order; `identifier` the identifier bytes of a non-root one.
 */
export function orderDirectories<D>(
  root: D,
  subdirectories: (dir: D) => readonly D[],
  identifier: (dir: D) => Uint8Array,
): PathTableDir<D>[] {
  const out: PathTableDir<D>[] = [{ dir: root, identifier: new Uint8Array([0]), parent: 1 }];
  for (let i = 0; i < out.length; i++) {
    for (const child of subdirectories(out[i]!.dir)) {
      out.push({ dir: child, identifier: identifier(child), parent: i + 1 });
    }
  }
  return out;
}

export function pathTableSize(dirs: readonly PathTableDir<unknown>[]): number {
  return dirs.reduce((sum, d) => sum + 8 + d.identifier.length + (d.identifier.length % 2), 0);
}

/** The table's bytes (`size` from `pathTableSize`, rounded up by the caller to whole sectors). */
export function renderPathTable<D>(
  dirs: readonly PathTableDir<D>[],
  lbaOf: (dir: D) => number,
  bigEndian: boolean,
  bufferSize: number,
): Uint8Array {
  const buf = new Uint8Array(bufferSize);
  let at = 0;
  for (const d of dirs) {
    buf[at] = d.identifier.length;
    buf[at + 1] = 0;
    if (bigEndian) {
      putBe32(buf, at + 2, lbaOf(d.dir));
      putBe16(buf, at + 6, d.parent);
    } else {
      putLe32(buf, at + 2, lbaOf(d.dir));
      putLe16(buf, at + 6, d.parent);
    }
    buf.set(d.identifier, at + 8);
    at += 8 + d.identifier.length + (d.identifier.length % 2);
  }
  return buf;
}
