import { describe, expect, it } from 'vitest';
import { Gather } from './gather.js';

describe('Gather', () => {
  it('copies every added string into one buffer and hands each its own view', () => {
    const g = new Gather();
    const got: Uint8Array[] = [];
    g.add([Uint8Array.of(1, 2), Uint8Array.of(3)], (v) => (got[0] = v));
    g.add([], (v) => (got[1] = v));
    g.add([Uint8Array.of(4, 5, 6)], (v) => (got[2] = v));
    const buffer = g.finish();
    expect(buffer?.byteLength).toBe(6);
    expect(got.map((v) => [...v])).toEqual([[1, 2, 3], [], [4, 5, 6]]);
    expect(got.every((v) => v.buffer === buffer)).toBe(true);
  });

  it('gives nothing when nothing was added, and starts afresh after each finish', () => {
    const g = new Gather();
    expect(g.finish()).toBeNull();
    g.add([Uint8Array.of(9)], () => {});
    expect(g.finish()?.byteLength).toBe(1);
    expect(g.finish()).toBeNull();
  });
});
