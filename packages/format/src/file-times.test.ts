import { lstatSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { microseconds, utimeArg } from './file-times.js';

function withFile(use: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'kinvault-times-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, '');
    use(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Random nanosecond times: mostly around today, some from 1902 to 2200. */
function randomTimes(n: number): bigint[] {
  const lo = -2_145_916_800n * 1_000_000_000n; // 1902
  const span = 9_435_484_800n * 1_000_000_000n; // to 2200
  return Array.from({ length: n }, (_, i) => {
    const r = BigInt(Math.floor(Math.random() * 2 ** 52)) * 4099n + BigInt(i);
    return i % 5 === 0 ? lo + (r % span) : 1_600_000_000_000_000_000n + (r % 10n ** 17n);
  });
}

describe('utimeArg', () => {
  it('sets exactly the snapshot microsecond for random nanosecond times, 1902 to 2200', () => {
    withFile((file) => {
      const wrong: string[] = [];
      for (const ns of [...randomTimes(5000), 0n, -1n, -999n, -1000n, -1001n, 999n, 1000n]) {
        const t = utimeArg(ns);
        utimesSync(file, t, t);
        const got = lstatSync(file, { bigint: true }).mtimeNs;
        if (microseconds(got) !== microseconds(ns)) wrong.push(`${ns} (${t}) -> ${got}`);
      }
      expect(wrong).toEqual([]);
    });
  });

  it('is needed: the plain ns / 1e9 misses the microsecond for some of those times', () => {
    withFile((file) => {
      const off = randomTimes(2000).filter((ns) => {
        if (ns < 0n) return false; // Node would substitute "now" for a negative number
        const t = Number(ns) / 1e9;
        utimesSync(file, t, t);
        return microseconds(lstatSync(file, { bigint: true }).mtimeNs) !== microseconds(ns);
      });
      expect(off.length).toBeGreaterThan(0);
    });
  });
});
