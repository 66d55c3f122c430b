import { describe, expect, it } from 'vitest';
import type { FileNode } from '@kinvault/format';
import { findHardLinks } from './restore-links.js';

const chunk = (b: number) => new Uint8Array(32).fill(b);
const file = (path: string, over: Partial<FileNode> = {}) => ({
  path,
  node: {
    kind: 'file',
    name: path.split('/').pop()!,
    mode: 0o644,
    mtimeNs: 1_700_000_000_123_456_789n,
    ctimeNs: 1_700_000_001_000_000_000n,
    inode: 42n,
    uid: 1000,
    gid: 1000,
    size: 10,
    chunks: [chunk(1)],
    ...over,
  } as FileNode,
});

describe('findHardLinks', () => {
  it('links every further path of one file on disk to its first path', () => {
    const c = file('/t/z/c');
    const a = file('/t/b/a');
    const b = file('/t/b/b');
    const other = file('/t/other', { inode: 43n });
    const { write, links } = findHardLinks([c, other, a, b]);
    expect(write).toEqual([other, a]);
    expect(links).toEqual([
      { file: b, to: a },
      { file: c, to: a },
    ]);
  });

  it('does not link entries that differ in anything but the name, or whose inode is unknown', () => {
    const a = file('/a');
    const variants = [
      file('/ctime', { ctimeNs: 1n }),
      file('/mtime', { mtimeNs: 1n }),
      file('/size', { size: 11 }),
      file('/mode', { mode: 0o600 }),
      file('/owner', { uid: 0 }),
      file('/content', { chunks: [chunk(2)] }),
    ];
    expect(findHardLinks([a, ...variants]).links).toEqual([]);
    const unknown = [file('/u1', { inode: 0n }), file('/u2', { inode: 0n })];
    expect(findHardLinks(unknown)).toEqual({ write: unknown, links: [] });
  });
});
