/**
 * Trees: one per directory, stored as tree blobs in packs.
 *
 * Encoding v1 (canonical: one byte string per tree; integers little-endian):
 *   u8 version = 1, u32 entry count, then entries sorted by the bytes of their UTF-8
 *   names, names unique. Each entry:
 *     str16 name       (u16 length ‖ UTF-8; 1..1024 bytes; no "/", no NUL, not "." or "..")
 *     u8    kind       1 file, 2 directory, 3 symlink
 *     u32   mode       permission bits, at most 0o7777 (callers mask st_mode)
 *     i64   mtime_ns   modification time, nanoseconds since 1970
 *     i64   ctime_ns   inode change time (change detection only; never restored)
 *     u64   inode      (change detection only)
 *     u32   uid, u32 gid
 *     file:    u64 size ‖ u32 chunk count ‖ count × chunk id[32]
 *     dir:     subtree id[32]
 *     symlink: str16 target (1..4095 bytes)
 *
 * Contract: `decodeTree(encodeTree(t))` equals t, `encodeTree(decodeTree(b))` equals b
 * for every b that decodes, and anything else is TREE_INVALID.
 */
import { KinvaultError } from '@kinvault/protocol';
import { BLOB_ID_BYTES } from './blob.js';
import { ByteReader, ByteWriter, encodeUtf8 } from './bytes.js';

export const TREE_VERSION = 1;
export const NodeKind = { file: 1, dir: 2, symlink: 3 } as const;
export const MAX_NAME_BYTES = 1024;
export const MAX_SYMLINK_BYTES = 4095;

interface NodeBase {
  readonly name: string;
  readonly mode: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly inode: bigint;
  readonly uid: number;
  readonly gid: number;
}
export interface FileNode extends NodeBase {
  readonly kind: 'file';
  readonly size: number;
  readonly chunks: readonly Uint8Array[];
}
export interface DirNode extends NodeBase {
  readonly kind: 'dir';
  readonly subtree: Uint8Array;
}
export interface SymlinkNode extends NodeBase {
  readonly kind: 'symlink';
  readonly target: string;
}
export type TreeNode = FileNode | DirNode | SymlinkNode;

export interface Tree {
  readonly nodes: readonly TreeNode[];
}

function invalid(why: string): never {
  throw new KinvaultError('TREE_INVALID', `Invalid tree: ${why}.`);
}

/** Compares names by their UTF-8 bytes (the canonical order). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function checkName(name: string): void {
  const bytes = encodeUtf8(name).byteLength;
  if (bytes === 0 || bytes > MAX_NAME_BYTES)
    invalid(`name of ${bytes} bytes (allowed 1..${MAX_NAME_BYTES})`);
  if (name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    invalid(`name ${JSON.stringify(name)} is not a single path component`);
  }
  if (/\p{Surrogate}/u.test(name)) invalid(`name ${JSON.stringify(name)} is not valid Unicode`);
}

function checkNode(n: TreeNode): void {
  checkName(n.name);
  if (!Number.isInteger(n.mode) || n.mode < 0 || n.mode > 0o7777)
    invalid(`mode ${n.mode} of ${n.name}`);
  for (const [k, v] of [
    ['uid', n.uid],
    ['gid', n.gid],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) invalid(`${k} ${v} of ${n.name}`);
  }
  if (n.inode < 0n || n.inode > 0xffffffffffffffffn) invalid(`inode of ${n.name}`);
  if (n.kind === 'file') {
    if (!Number.isSafeInteger(n.size) || n.size < 0) invalid(`size ${n.size} of ${n.name}`);
    if ((n.size === 0) !== (n.chunks.length === 0))
      invalid(`${n.name} has size ${n.size} and ${n.chunks.length} chunks`);
    if (n.chunks.length > n.size) invalid(`${n.name} has more chunks than bytes`);
    for (const c of n.chunks)
      if (c.byteLength !== BLOB_ID_BYTES) invalid(`a chunk id of ${n.name} is not 32 bytes`);
  } else if (n.kind === 'dir') {
    if (n.subtree.byteLength !== BLOB_ID_BYTES) invalid(`subtree id of ${n.name} is not 32 bytes`);
  } else {
    const t = encodeUtf8(n.target).byteLength;
    if (
      t === 0 ||
      t > MAX_SYMLINK_BYTES ||
      n.target.includes('\0') ||
      /\p{Surrogate}/u.test(n.target)
    )
      invalid(`symlink target of ${n.name} (${t} bytes)`);
  }
}

/** Sorts nodes canonically (callers may pass them in any order). */
export function sortNodes(nodes: readonly TreeNode[]): TreeNode[] {
  return [...nodes].sort((a, b) => compareNames(a.name, b.name));
}

export function encodeTree(tree: Tree): Uint8Array {
  const nodes = tree.nodes;
  const w = new ByteWriter(64 + nodes.length * 96).u8(TREE_VERSION).u32(nodes.length);
  let prev: string | undefined;
  for (const n of nodes) {
    checkNode(n);
    if (prev !== undefined && compareNames(prev, n.name) >= 0) {
      invalid(`entries are not sorted and unique at ${JSON.stringify(n.name)} (use sortNodes)`);
    }
    prev = n.name;
    w.str16(n.name)
      .u8(NodeKind[n.kind])
      .u32(n.mode)
      .i64(n.mtimeNs)
      .i64(n.ctimeNs)
      .u64(n.inode)
      .u32(n.uid)
      .u32(n.gid);
    if (n.kind === 'file') {
      w.u64(n.size).u32(n.chunks.length);
      for (const c of n.chunks) w.bytes(c);
    } else if (n.kind === 'dir') {
      w.bytes(n.subtree);
    } else {
      w.str16(n.target);
    }
  }
  return w.finish();
}

export function decodeTree(bytes: Uint8Array): Tree {
  const r = new ByteReader(bytes, 'TREE_INVALID', 'Invalid tree');
  const version = r.u8();
  if (version !== TREE_VERSION)
    invalid(`version ${version} is not supported (this program reads ${TREE_VERSION})`);
  const count = r.u32();
  // Smallest entry: a symlink with 1-byte name and target is 43 bytes.
  if (count > r.remaining / 43) invalid(`it claims ${count} entries in ${r.remaining} bytes`);
  const nodes: TreeNode[] = [];
  let prev: string | undefined;
  for (let i = 0; i < count; i++) {
    const name = r.str16();
    const kind = r.u8();
    const base = {
      name,
      mode: r.u32(),
      mtimeNs: r.i64(),
      ctimeNs: r.i64(),
      inode: BigInt.asUintN(64, r.i64()),
      uid: r.u32(),
      gid: r.u32(),
    };
    let node: TreeNode;
    if (kind === NodeKind.file) {
      const size = r.u64();
      const n = r.u32();
      if (n > r.remaining / BLOB_ID_BYTES)
        invalid(`${JSON.stringify(name)} claims ${n} chunks in ${r.remaining} bytes`);
      const chunks: Uint8Array[] = [];
      for (let j = 0; j < n; j++) chunks.push(r.copy(BLOB_ID_BYTES));
      node = { ...base, kind: 'file', size, chunks };
    } else if (kind === NodeKind.dir) {
      node = { ...base, kind: 'dir', subtree: r.copy(BLOB_ID_BYTES) };
    } else if (kind === NodeKind.symlink) {
      node = { ...base, kind: 'symlink', target: r.str16() };
    } else {
      invalid(`entry ${JSON.stringify(name)} has unknown kind ${kind}`);
    }
    checkNode(node);
    if (prev !== undefined && compareNames(prev, name) >= 0)
      invalid(`entries are not sorted and unique at ${JSON.stringify(name)}`);
    prev = name;
    nodes.push(node);
  }
  r.end();
  return { nodes };
}
