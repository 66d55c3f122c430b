/**
 * The conformance suite every Store adapter passes: call `storeConformance` from a test
 * file with a factory that gives a fresh, empty store (and cleans it up), and, where it
 * can, another instance of that store and what its provider received.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isKinvaultError } from '@kinvault/protocol';
import { bytesBody, readAll, sha256Hex } from '../body.js';
import type { Body, ObjectInfo, Store, UploadResume } from '../store.js';

export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
  /** A new instance of the same store, as after a restart (default: `store` itself). */
  reopen?(): Store;
  /** Bytes of object data the provider has received for this store so far, when known. */
  received?(): number;
}

/** An UploadResume held in memory; `state` is what was saved last. */
export function memoryResume(): UploadResume & { state: string | null; saves: number } {
  return {
    state: null,
    saves: 0,
    async load() {
      return this.state;
    },
    async save(state: string) {
      this.state = state;
      this.saves++;
    },
    async clear() {
      this.state = null;
    },
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isKinvaultError(e)) return e.code;
    throw e;
  }
  return 'resolved';
}

async function listAll(store: Store, prefix: string, limit: number): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let after: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.list(prefix, { after, limit });
    expect(page.objects.length).toBeLessThanOrEqual(limit);
    out.push(...page.objects);
    if (!page.next) return out;
    after = page.next;
  }
  throw new Error('list never ended');
}

/** A body whose stream fails after `upTo` bytes, as a dropped connection would. */
function brokenBody(bytes: Uint8Array, upTo: number): Body {
  return {
    size: bytes.byteLength,
    sha256: sha256Hex(bytes),
    async *open() {
      yield bytes.subarray(0, upTo);
      throw new Error('the source went away');
    },
  };
}

export function storeConformance(name: string, make: () => Promise<StoreFixture>): void {
  describe(`${name}: Store conformance`, () => {
    let fixture: StoreFixture | undefined;
    const fresh = async () => (fixture = await make()).store;
    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    it('reads back what was put, whole and by range; head gives the size', async () => {
      const store = await fresh();
      const bytes = randomBytes(300_000);
      const info = await store.put('packs/ab/one', bytesBody(bytes));
      expect(info).toMatchObject({ key: 'packs/ab/one', size: bytes.length });
      expect((await readAll(store, 'packs/ab/one')).equals(bytes)).toBe(true);
      const part = await readAll(store, 'packs/ab/one', { offset: 1000, length: 5000 });
      expect(part.equals(bytes.subarray(1000, 6000))).toBe(true);
      const head = await store.head('packs/ab/one');
      expect(head?.size).toBe(bytes.length);
      if (store.capabilities.recordsSha256) expect(head?.sha256).toBe(sha256Hex(bytes));
      await store.put('empty', bytesBody(new Uint8Array(0)));
      expect((await readAll(store, 'empty')).length).toBe(0);
    });

    it('answers a missing key: get NOT_FOUND, head null, delete succeeds', async () => {
      const store = await fresh();
      expect(await codeOf(store.get('snapshots/none'))).toBe('NOT_FOUND');
      expect(await store.head('snapshots/none')).toBeNull();
      await store.delete('snapshots/none');
      await store.put('x', bytesBody(randomBytes(10)));
      expect(await codeOf(store.get('x', { offset: 5, length: 6 }))).toBe('INVALID_ARGUMENT');
    });

    it('lists in key order, a page at a time, by prefix', async () => {
      const store = await fresh();
      const keys = Array.from({ length: 23 }, (_, i) => `packs/${String(i % 3)}${i}/k${i}`);
      await Promise.all(
        keys.map((k) => store.put(k, bytesBody(randomBytes(100 + (k.length % 7))))),
      );
      await store.put('snapshots/s1', bytesBody(randomBytes(5)));
      const listed = await listAll(store, 'packs/', 10);
      expect(listed.map((o) => o.key)).toEqual([...keys].sort());
      for (const o of listed) {
        const head = (await store.head(o.key))!;
        expect(o.size).toBe(head.size);
        // A listing need not carry SHA-256s; one it gives is the object's.
        if (o.sha256 !== null) expect(o.sha256).toBe(head.sha256);
      }
      expect((await listAll(store, '', 7)).length).toBe(24);
      expect((await listAll(store, 'snapshots/', 1000)).map((o) => o.key)).toEqual([
        'snapshots/s1',
      ]);
      expect((await store.list('nothing/')).objects).toEqual([]);
    });

    it('deletes idempotently, and a re-put of the same bytes leaves one object', async () => {
      const store = await fresh();
      const bytes = randomBytes(2000);
      await store.put('keys/passphrase', bytesBody(bytes));
      await store.put('keys/passphrase', bytesBody(bytes));
      expect((await store.list('keys/')).objects.map((o) => o.key)).toEqual(['keys/passphrase']);
      await store.delete('keys/passphrase');
      await store.delete('keys/passphrase');
      expect(await store.head('keys/passphrase')).toBeNull();
      expect((await store.list('keys/')).objects).toEqual([]);
    });

    it('refuses bytes that do not match the declared SHA-256 or size, keeping what was there', async () => {
      const store = await fresh();
      const good = randomBytes(4096);
      await store.put('catalog/c', bytesBody(good));
      const other = randomBytes(4096);
      expect(await codeOf(store.put('catalog/c', bytesBody(other, sha256Hex(good))))).toBe(
        'CHECKSUM_MISMATCH',
      );
      const short = { ...bytesBody(good), size: good.length + 1 };
      expect(await codeOf(store.put('catalog/c', short))).toBe('CHECKSUM_MISMATCH');
      expect((await readAll(store, 'catalog/c')).equals(good)).toBe(true);
      expect(await codeOf(store.put('catalog/d', bytesBody(other, sha256Hex(good))))).toBe(
        'CHECKSUM_MISMATCH',
      );
      expect(await store.head('catalog/d')).toBeNull();
    });

    it('takes concurrent puts, and one of two racing puts of a key whole', async () => {
      const store = await fresh();
      const a = randomBytes(100_000);
      const b = randomBytes(100_000);
      const many = Array.from({ length: 8 }, () => randomBytes(50_000));
      await Promise.all([
        store.put('race', bytesBody(a)),
        store.put('race', bytesBody(b)),
        ...many.map((m, i) => store.put(`many/${i}`, bytesBody(m))),
      ]);
      const raced = await readAll(store, 'race');
      expect(raced.equals(a) || raced.equals(b)).toBe(true);
      for (const [i, m] of many.entries())
        expect((await readAll(store, `many/${i}`)).equals(m)).toBe(true);
    });

    it('leaves nothing visible after an interrupted put, and the next put succeeds', async () => {
      const store = await fresh();
      const bytes = randomBytes(200_000);
      await expect(store.put('packs/cd/cut', brokenBody(bytes, 70_000))).rejects.toThrow();
      expect(await store.head('packs/cd/cut')).toBeNull();
      expect((await store.list('')).objects).toEqual([]);
      await store.put('packs/cd/cut', bytesBody(bytes));
      expect((await readAll(store, 'packs/cd/cut')).equals(bytes)).toBe(true);
    });

    it('resumes an interrupted put in a new instance from the saved state, sending only what was missing', async () => {
      const store = await fresh();
      const received = () => fixture!.received?.() ?? 0;
      const bytes = randomBytes(900_000);
      const resume = memoryResume();
      const before = received();
      await expect(
        store.put('packs/ef/resumed', brokenBody(bytes, 600_000), { resume }),
      ).rejects.toThrow();
      expect(await store.head('packs/ef/resumed')).toBeNull();
      const first = received() - before;
      const again = fixture!.reopen?.() ?? store;
      await again.put('packs/ef/resumed', bytesBody(bytes), { resume });
      const second = received() - before - first;
      expect((await readAll(again, 'packs/ef/resumed')).equals(bytes)).toBe(true);
      expect((await again.list('packs/')).objects.map((o) => o.key)).toEqual(['packs/ef/resumed']);
      expect(resume.state).toBeNull(); // done with
      // What the provider had from the first put is not sent again.
      expect(second).toBeLessThanOrEqual(bytes.length - first);
    });

    it('stores a body that can start anywhere (openAt) whole, and resumes it after a cut', async () => {
      const store = await fresh();
      const received = () => fixture!.received?.() ?? 0;
      const bytes = randomBytes(900_000);
      const resume = memoryResume();
      const starts: number[] = [];
      const generated = (cutAt: number | null): Body => ({
        size: bytes.byteLength,
        sha256: sha256Hex(bytes),
        async *open() {
          yield* this.openAt!(0);
        },
        async *openAt(offset: number) {
          starts.push(offset);
          if (cutAt === null) return void (yield bytes.subarray(offset));
          yield bytes.subarray(offset, cutAt);
          throw new Error('the source went away');
        },
      });
      const before = received();
      await expect(store.put('packs/ab/gen', generated(600_000), { resume })).rejects.toThrow();
      const first = received() - before;
      const again = fixture!.reopen?.() ?? store;
      await again.put('packs/ab/gen', generated(null), { resume });
      expect((await readAll(again, 'packs/ab/gen')).equals(bytes)).toBe(true);
      expect(resume.state).toBeNull();
      expect(received() - before - first).toBeLessThanOrEqual(bytes.length - first);
      // Wherever a store started the second time, it made the rest from there on.
      expect(starts.at(-1)).toBeLessThanOrEqual(first);
    });

    it('refuses keys that are not keys', async () => {
      const store = await fresh();
      for (const bad of ['', '/abs', 'a//b', '../up', 'a/../b', 'Upper', 'sp ace', 'a/'])
        expect(await codeOf(store.put(bad, bytesBody(randomBytes(1))))).toBe('INVALID_ARGUMENT');
    });
  });
}
