import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesBody, readAll } from '../body.js';
import { storeConformance } from '../testing/conformance.js';
import { FileStore, MARKER } from './file.store.js';

storeConformance('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kv-filestore-'));
  const store = new FileStore(join(dir, 'target'));
  await store.initialise();
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('file store', () => {
  it('removes the folders a delete empties, and a put makes them again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kv-filestore-'));
    try {
      const store = new FileStore(join(dir, 't'));
      await store.initialise();
      await store.put('catalog/0000000000001/a', bytesBody(randomBytes(10)));
      await store.put('catalog/0000000000002/b', bytesBody(randomBytes(10)));
      await store.delete('catalog/0000000000001/a');
      expect((await readdir(join(dir, 't', 'catalog'))).sort()).toEqual(['0000000000002']);
      await store.delete('catalog/0000000000002/b');
      expect((await readdir(join(dir, 't'))).sort()).toEqual(['.tmp', MARKER].sort());
      await store.put('catalog/0000000000002/b', bytesBody(Buffer.from('again')));
      expect((await readAll(store, 'catalog/0000000000002/b')).toString()).toBe('again');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to write into a folder without its marker (a disk not mounted), and writes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kv-filestore-'));
    try {
      const mountPoint = join(dir, 'usb');
      await mkdir(mountPoint);
      const store = new FileStore(mountPoint);
      await expect(store.put('packs/ab/x', bytesBody(randomBytes(10)))).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
        message: expect.stringMatching(/is the disk mounted\?/),
      });
      await expect(store.head('x')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
      expect(await readdir(mountPoint)).toEqual([]);
      // A target on a disk whose mount point itself is gone is not created either.
      await expect(new FileStore(join(dir, 'gone', 'kv')).initialise()).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
      });
      await store.initialise();
      expect(await readdir(mountPoint)).toEqual([MARKER]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('sweep removes what an interrupted put left, which is never listed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kv-filestore-'));
    try {
      const store = new FileStore(dir);
      await store.initialise();
      await mkdir(join(dir, '.tmp'));
      await writeFile(join(dir, '.tmp', 'leftover'), randomBytes(100));
      expect((await store.list('')).objects).toEqual([]);
      await store.put('a', bytesBody(Buffer.from('a')));
      await store.sweep();
      expect((await readdir(dir)).sort()).toEqual([MARKER, 'a'].sort());
      expect((await readAll(store, 'a')).toString()).toBe('a');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
