/**
 * Everything a recovery needs, as objects in a store (design §19.2): the sealed snapshot
 * manifests, both key files and a sealed catalog of the index, beside the packs. Today
 * the store is the NAS data directory; the staging of issue 10 copies the same objects
 * to the targets.
 *
 * Contract: after `snapshotCommitted` resolves, the manifest is in the store; after
 * `keyFilesChanged`, both key files are; `writeCatalog` (run by a job after commits, so
 * that a burst of them writes one) seals the whole index into a new catalog, read from
 * PostgreSQL in batches. A crash in between leaves PostgreSQL ahead of the store:
 * `reconcile` (run at start) writes whatever is missing and a fresh catalog. The coordinator seals catalogs to the household box key
 * and cannot read them back (§12.3). Only the newest `keep` catalogs are kept.
 */
import { sealCatalog } from '@kinvault/format';
import {
  bytesBody,
  FileStore,
  listAll,
  objectKeys,
  readAll,
  sha256Hex,
  type Store,
} from '@kinvault/stores';
import type { HouseholdRepository } from '../repositories/household.repository.js';
import type { RecoveryRepository } from '../repositories/recovery.repository.js';
import { catalogLines } from './catalog-content.js';

export interface RecoveryObjectsDeps {
  store: Store;
  household: HouseholdRepository;
  recovery: RecoveryRepository;
  now?: () => Date;
  /** Catalogs kept in the store (the newest). */
  keep?: number;
}

export function recoveryObjectsService(deps: RecoveryObjectsDeps) {
  const { store, household, recovery } = deps;
  const now = deps.now ?? (() => new Date());
  const keep = deps.keep ?? 3;

  /** Writes the object unless the store holds exactly these bytes already. */
  async function putBytes(key: string, bytes: Uint8Array): Promise<boolean> {
    const sha256 = sha256Hex(bytes);
    const there = await store.head(key);
    if (there && there.size === bytes.byteLength) {
      const stored = there.sha256 ?? sha256Hex(await readAll(store, key));
      if (stored === sha256) return false;
    }
    await store.put(key, bytesBody(bytes, sha256));
    return true;
  }

  async function keyFilesChanged(): Promise<void> {
    const h = await household.get();
    if (!h) return;
    await putBytes(objectKeys.keyFile('passphrase'), h.passphraseKeyFile);
    await putBytes(objectKeys.keyFile('recovery'), h.recoveryKeyFile);
  }

  /** Seals a catalog of the whole index and stores it; returns its key (null: no household). */
  async function writeCatalog(): Promise<string | null> {
    const h = await household.get();
    if (!h) return null;
    // A catalog's name never sorts before an earlier one's, even if the clock went back.
    const latest = (await catalogKeys()).at(-1);
    const latestMs = latest ? Number(latest.slice('catalog/'.length, 'catalog/'.length + 13)) : 0;
    const written = new Date(Math.max(now().getTime(), latestMs + 1));
    const header = {
      kind: 'kinvault-catalog',
      version: 1,
      repository: h.repositoryId.toString('hex'),
      written: written.toISOString(),
      boxPublicKey: h.boxPublicKey.toString('base64'),
      signPublicKey: h.signPublicKey?.toString('base64') ?? null,
    } as const;
    // Packs and snapshots from one view of the index: a snapshot committed between the
    // two reads would otherwise be listed without its newest packs.
    const sealed = await recovery.consistent(async (view) => {
      const lines = catalogLines(header, view.packs(), view.snapshots());
      const parts: Uint8Array[] = [];
      for await (const part of sealCatalog(h.boxPublicKey, lines)) parts.push(part);
      return Buffer.concat(parts);
    });
    const key = objectKeys.catalog(written.getTime(), sha256Hex(sealed));
    await store.put(key, bytesBody(sealed));
    await pruneCatalogs();
    return key;
  }

  const catalogKeys = async () => (await listAll(store, 'catalog/')).map((o) => o.key).sort();

  async function pruneCatalogs(): Promise<void> {
    const keys = await catalogKeys();
    for (const key of keys.slice(0, Math.max(0, keys.length - keep))) await store.delete(key);
  }

  return {
    /** Removes temporary files of interrupted writes (at start, before any write). */
    sweep: () => (store instanceof FileStore ? store.sweep() : Promise.resolve()),
    keyFilesChanged,
    writeCatalog,

    async snapshotCommitted(id: string, sealed: Uint8Array): Promise<void> {
      await putBytes(objectKeys.snapshot(id), sealed);
    },

    /** Writes what PostgreSQL has and the store lacks, then a fresh catalog. */
    async reconcile(): Promise<{ snapshotsWritten: number; catalog: string | null }> {
      let snapshotsWritten = 0;
      for (const s of await recovery.sealedSnapshots())
        if (await putBytes(objectKeys.snapshot(s.id.toString('hex')), s.sealed)) snapshotsWritten++;
      await keyFilesChanged();
      return { snapshotsWritten, catalog: await writeCatalog() };
    },
  };
}

export type RecoveryObjectsService = ReturnType<typeof recoveryObjectsService>;
