import { randomBytes } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOLE_BLOCK, writeSparseSync } from './fs-write.js';

const dir = mkdtempSync(join(tmpdir(), 'kinvault-fs-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `data` at `position` of a fresh file the way a restore does; returns the file. */
function restoreInto(name: string, data: Uint8Array, position: number, size: number) {
  const path = join(dir, name);
  const fd = openSync(path, 'wx');
  const end = writeSparseSync(fd, data, position);
  if (end < size) ftruncateSync(fd, size);
  closeSync(fd);
  return { path, end };
}

describe('writeSparseSync', () => {
  it('leaves blocks of zeros unwritten, so they stay holes, and the bytes read back the same', () => {
    const MiB = 1024 * 1024;
    const data = Buffer.alloc(8 * MiB);
    randomBytes(100).copy(data, 0); // data in the first block only
    randomBytes(3 * HOLE_BLOCK).copy(data, 3 * MiB + 5); // unaligned run in the middle
    data[6 * MiB] = 1; // one byte
    const { path, end } = restoreInto('sparse', data, 0, data.byteLength);
    expect(end).toBe(6 * MiB + HOLE_BLOCK); // the trailing zeros were not written
    expect(readFileSync(path).equals(data)).toBe(true);
    // 1 + 4 + 1 blocks of 64 KiB hold data; the rest are holes.
    expect(statSync(path).blocks * 512).toBeLessThanOrEqual(6 * HOLE_BLOCK + 64 * 1024);
  });

  it('aligns blocks to the file, not to the piece, and writes random data whole', () => {
    const before = Buffer.alloc(100_000); // zeros before the piece: never written
    const piece = Buffer.concat([Buffer.alloc(200_000), randomBytes(300_000), Buffer.alloc(5)]);
    const { path, end } = restoreInto('offset', piece, before.byteLength, 700_000);
    expect(end).toBe(before.byteLength + piece.byteLength);
    const expected = Buffer.concat([before, piece, Buffer.alloc(700_000 - 600_005)]);
    expect(readFileSync(path).equals(expected)).toBe(true);

    const random = randomBytes(3 * HOLE_BLOCK + 17);
    const whole = restoreInto('random', random, 7, 7 + random.byteLength);
    expect(whole.end).toBe(7 + random.byteLength);
    expect(readFileSync(whole.path).subarray(7).equals(random)).toBe(true);
  });

  it('writes nothing for a piece of zeros', () => {
    const { path, end } = restoreInto('zeros', Buffer.alloc(5 * HOLE_BLOCK), 0, 5 * HOLE_BLOCK);
    expect(end).toBe(0);
    expect(statSync(path)).toMatchObject({ size: 5 * HOLE_BLOCK, blocks: 0 });
  });
});
