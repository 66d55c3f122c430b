import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isKinvaultError } from '@kinvault/protocol';
import { deriveKeys } from './keys.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  openSnapshot,
  sealSnapshot,
  type Snapshot,
} from './snapshot.js';
import { deterministicRandom } from './random.js';

const random = deterministicRandom('snapshot.test');
const keys = deriveKeys(random(32));

const snapshot: Snapshot = {
  startNs: 1_763_780_000_000_000_000n,
  endNs: 1_763_780_060_000_000_000n,
  tree: random(32),
  parent: random(32),
  hostname: 'kitchen-laptop',
  device: 'anna-laptop',
  paths: ['/Users/anna/Pictures', '/Users/anna/Documents/Tax 2025'],
  tags: ['nightly'],
  partial: true,
  errors: [{ path: '/Users/anna/Pictures/locked.jpg', message: 'EACCES: permission denied' }],
  stats: { files: 31_000, dirs: 420, bytes: 251_000_000_000, filesNew: 12, bytesNew: 48_000_000 },
};

describe('snapshot manifests', () => {
  it('encode canonically and decode to the same value', () => {
    const bytes = encodeSnapshot(snapshot);
    expect(decodeSnapshot(bytes)).toEqual(snapshot);
    expect(encodeSnapshot(decodeSnapshot(bytes))).toEqual(bytes);
    const root = { ...snapshot, parent: null, partial: false, errors: [] };
    expect(decodeSnapshot(encodeSnapshot(root))).toEqual(root);
  });

  it('seal with an id anyone can verify, and open only with the right key', () => {
    const { id, bytes } = sealSnapshot(keys, snapshot, random);
    expect(id).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(openSnapshot(keys, bytes)).toEqual(snapshot);
    expect(() => openSnapshot(deriveKeys(random(32)), bytes)).toThrow(/could not be decrypted/);
    const bad = bytes.slice();
    bad[40]! ^= 1;
    expect(() => openSnapshot(keys, bad)).toThrow(/could not be decrypted/);
  });

  it('refuse inconsistent or malformed manifests', () => {
    expect(() => encodeSnapshot({ ...snapshot, errors: [] })).toThrow(/partial/);
    const bytes = encodeSnapshot(snapshot);
    for (const cut of [0, 1, 20, bytes.byteLength - 1]) {
      let code = '';
      try {
        decodeSnapshot(bytes.subarray(0, cut));
      } catch (e) {
        code = isKinvaultError(e) ? e.code : 'other';
      }
      expect(code, `cut at ${cut}`).toBe('SNAPSHOT_INVALID');
    }
    const newer = bytes.slice();
    newer[0] = 9;
    expect(() => decodeSnapshot(newer)).toThrow(/version 9/);
    expect(() => decodeSnapshot(Buffer.concat([bytes, Uint8Array.of(0)]))).toThrow(/trailing/);
  });
});
