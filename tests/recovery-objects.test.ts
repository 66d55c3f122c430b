/**
 * Everything a recovery needs is in the NAS store, not only in PostgreSQL (issue 10 §1):
 * sealed snapshot manifests, both key files and a sealed catalog, beside the packs. The
 * index rebuilt from those files alone, with the passphrase, equals the one in PostgreSQL.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveKeys, openCatalogBytes, openKeyFile } from '@kinvault/format';
import { parseCatalog } from '../apps/server/src/services/catalog-content.js';
import {
  initCoordinator,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
} from './support/kinvaultd.js';
import { enrollDevice, PASSPHRASE, runKinvault } from './support/kinvault.js';
import { databaseOf, filesUnder } from './support/files.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Index {
  blobs: string[]; // "blob pack type", sorted
  packs: string[]; // "name size", sorted
  snapshots: string[]; // "id device files bytes pack,pack", sorted
}

/** The index as PostgreSQL has it. */
async function indexInPostgres(dataDir: string): Promise<Index & { sealed: Map<string, Buffer> }> {
  const sql = await databaseOf(dataDir);
  try {
    const blobs = await sql<{ id: Buffer; pack: Buffer; type: number }[]>`select * from blobs`;
    const packs = await sql<{ name: Buffer; size: string }[]>`select name, size from packs`;
    const snaps = await sql<
      { id: Buffer; sealed: Buffer; device: string; files: string; logical_bytes: string }[]
    >`select s.id, s.sealed, d.name as device, s.files, s.logical_bytes
      from snapshots s join devices d on d.id = s.device_id`;
    const sp = await sql<{ snapshot: Buffer; pack: Buffer }[]>`select * from snapshot_packs`;
    const packsOf = (id: Buffer) =>
      sp
        .filter((r) => r.snapshot.equals(id))
        .map((r) => r.pack.toString('hex'))
        .sort()
        .join(',');
    return {
      blobs: blobs.map((b) => `${b.id.toString('hex')} ${b.pack.toString('hex')} ${b.type}`).sort(),
      packs: packs.map((p) => `${p.name.toString('hex')} ${p.size}`).sort(),
      snapshots: snaps
        .map(
          (s) =>
            `${s.id.toString('hex')} ${s.device} ${s.files} ${s.logical_bytes} ${packsOf(s.id)}`,
        )
        .sort(),
      sealed: new Map(snaps.map((s) => [s.id.toString('hex'), s.sealed])),
    };
  } finally {
    await sql.end();
  }
}

/** The index rebuilt from the data directory's files alone, with the passphrase. */
async function indexFromStore(dataDir: string): Promise<Index> {
  const keyFile = await readFile(join(dataDir, 'keys', 'passphrase'));
  const keys = deriveKeys(openKeyFile(keyFile, { passphrase: PASSPHRASE }).masterKey);
  // catalog/<ms>/<SHA-256>: the newest sorts last.
  const catalogs = (await filesUnder(join(dataDir, 'catalog'))).sort();
  const sealed = await readFile(join(dataDir, 'catalog', catalogs[catalogs.length - 1]!));
  const text = Buffer.from(await openCatalogBytes(keys.boxPublicKey, keys.boxSecretKey, sealed));
  const catalog = parseCatalog(text.toString('utf8'));
  for (const p of catalog.packs) {
    // Every pack the catalog names is in the store, whole.
    const bytes = await readFile(join(dataDir, 'packs', p.pack.slice(0, 2), p.pack));
    expect({ name: sha256(bytes), size: bytes.length }).toEqual({ name: p.pack, size: p.size });
  }
  for (const s of catalog.snapshots) {
    // Every snapshot's manifest is in the store, named by its SHA-256.
    expect(sha256(await readFile(join(dataDir, 'snapshots', s.snapshot)))).toBe(s.snapshot);
  }
  return {
    blobs: catalog.packs
      .flatMap((p) => p.blobs.map(([id, type]) => `${id} ${p.pack} ${type}`))
      .sort(),
    packs: catalog.packs.map((p) => `${p.pack} ${p.size}`).sort(),
    snapshots: catalog.snapshots
      .map(
        (s) => `${s.snapshot} ${s.device} ${s.files} ${s.bytes} ${[...s.packs].sort().join(',')}`,
      )
      .sort(),
  };
}

describe('recovery objects in the NAS store (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-recovery-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-recovery-work-');
    anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('writes manifests, key files and a catalog with each snapshot; the index rebuilt from them equals PostgreSQL', async () => {
    const src = join(work, 'photos');
    await mkdir(join(src, 'album'), { recursive: true });
    for (let i = 0; i < 30; i++)
      await writeFile(join(src, 'album', `IMG_${i}.jpg`), randomBytes(20_000 + i * 1000));
    await writeFile(join(src, 'movie.mp4'), randomBytes(6 * 1024 * 1024));
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    await writeFile(join(src, 'album', 'new.jpg'), randomBytes(50_000));
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    // The manifests are written before the commits answer; the catalog by a job after.
    const jobs = async () =>
      (
        JSON.parse(
          (await runKinvaultd(['jobs', '--json', '--data-dir', c.dataDir])).stdout,
        ) as unknown[]
      ).length;
    await expect.poll(jobs, { timeout: 30_000, interval: 300 }).toBe(0);

    const pg = await indexInPostgres(c.dataDir);
    expect(pg.snapshots).toHaveLength(2);
    for (const [id, sealed] of pg.sealed)
      expect((await readFile(join(c.dataDir, 'snapshots', id))).equals(sealed)).toBe(true);
    const { sealed: _sealed, ...index } = pg;
    expect(await indexFromStore(c.dataDir)).toEqual(index);
    // The coordinator keeps the newest catalogs only.
    expect((await filesUnder(join(c.dataDir, 'catalog'))).length).toBeLessThanOrEqual(3);
    expect((await readdir(join(c.dataDir, 'catalog'))).length).toBeLessThanOrEqual(3); // no empty folders left
  });

  it('writes again at start what a crash kept from the store', async () => {
    await rm(join(c.dataDir, 'snapshots'), { recursive: true });
    await rm(join(c.dataDir, 'catalog'), { recursive: true });
    await rm(join(c.dataDir, 'keys'), { recursive: true });
    expect(await c.stop()).toBe(0);
    c = await startCoordinator(c.dataDir, c.port);
    await expect
      .poll(() => c.log(), { timeout: 30_000 })
      .toMatch(/recovery objects are up to date/);
    const { sealed: _sealed, ...index } = await indexInPostgres(c.dataDir);
    expect(await indexFromStore(c.dataDir)).toEqual(index);
    // The status command and a check still see the data directory as before.
    expect((await runKinvaultd(['check', '--data-dir', c.dataDir, '--json'])).code).toBe(0);
  });
});
