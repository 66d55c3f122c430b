/**
 * Test sources that need no disk: a file's bytes are a deterministic pattern of its seed
 * and position (a fixed pseudo-random 1 MiB block, each block stamped with the seed and
 * the block number), so a 4.5 GiB file costs only memory copies and any misplaced block
 * changes the bytes.
 */
import { createHash } from 'node:crypto';
import type { IsoSource } from '../write.js';

const BLOCK = 1 << 20;
let template: Uint8Array | null = null;

function templateBlock(): Uint8Array {
  if (template) return template;
  template = new Uint8Array(BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    template[i] = x & 0xff;
  }
  return template;
}

function block(seed: number, index: number): Uint8Array {
  const out = Buffer.allocUnsafe(BLOCK); // filled at once: one pass over the bytes, not two
  out.set(templateBlock());
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, seed);
  view.setUint32(4, index);
  view.setUint32(8, seed ^ 0x5a5a5a5a);
  return out;
}

/** Bytes [start, size) of the pattern file `seed`, in chunks of at most 1 MiB. */
export async function* patternBytes(
  seed: number,
  size: number,
  start = 0,
): AsyncGenerator<Uint8Array> {
  for (let at = start; at < size;) {
    const index = Math.floor(at / BLOCK);
    const from = at - index * BLOCK;
    const to = Math.min(BLOCK, size - index * BLOCK);
    yield block(seed, index).subarray(from, to);
    at += to - from;
  }
}

export function sha256(chunks: Iterable<Uint8Array>): string {
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  return hash.digest('hex');
}

export async function patternSha256(seed: number, size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of patternBytes(seed, size)) hash.update(c);
  return hash.digest('hex');
}

export interface PatternFile {
  path: string;
  size: number;
  seed: number;
}

/**
 * A source for writeIso over pattern files (it fails on a path it does not know). With
 * `hashes`, each file read whole from its start gets the SHA-256 of what was handed out.
 */
export function patternSource(
  files: readonly PatternFile[],
  hashes?: Map<string, string>,
): IsoSource {
  const byPath = new Map(files.map((f) => [f.path, f]));
  return (path, start) => {
    const file = byPath.get(path);
    if (!file) throw new Error(`No pattern file ${path}`);
    const bytes = patternBytes(file.seed, file.size, start);
    return hashes && start === 0 ? hashing(bytes, (digest) => hashes.set(path, digest)) : bytes;
  };
}

async function* hashing(
  chunks: AsyncIterable<Uint8Array>,
  done: (sha256: string) => void,
): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  for await (const c of chunks) {
    hash.update(c);
    yield c;
  }
  done(hash.digest('hex'));
}
