/**
 * A repository in a local directory, written and read with nothing but the format core:
 *   keys/passphrase.key, keys/recovery.key   the two key files
 *   packs/<2 hex>/<sha256>                    packs, named by their SHA-256
 *   snapshots/<sha256>                        sealed snapshot manifests
 * It exists to demonstrate the format end to end (npm run demo) and to prove that a
 * repository can be read back from its files and a passphrase alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobType } from '../src/index.js';
import {
  createKeyFile,
  deriveKeys,
  generateMasterKey,
  generateRecoveryCode,
  openKeyFile,
  openSnapshot,
  readBlob,
  readPackHeader,
  sealSnapshot,
  snapshotId,
  systemRandom,
  toHex,
  type OpenPackSink,
  type PackEntry,
  type RandomAccessSource,
  type RepositoryKeys,
  type Snapshot,
} from '../src/index.js';

export function fileSource(fh: FileHandle, size: number): RandomAccessSource {
  return {
    size,
    read: async (offset, length) => {
      const buf = new Uint8Array(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new Error(`short read at ${offset}`);
      return buf;
    },
  };
}

export async function initRepository(
  dir: string,
  passphrase: string,
): Promise<{ masterKey: Uint8Array; recoveryCode: string }> {
  await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  await mkdir(join(dir, 'packs'), { recursive: true });
  await mkdir(join(dir, 'snapshots'), { recursive: true });
  const masterKey = generateMasterKey(systemRandom);
  const repositoryId = systemRandom(16);
  const { code } = generateRecoveryCode(systemRandom);
  await writeFile(
    join(dir, 'keys', 'passphrase.key'),
    createKeyFile(masterKey, repositoryId, { passphrase }),
    { mode: 0o600, flag: 'wx' },
  );
  await writeFile(
    join(dir, 'keys', 'recovery.key'),
    createKeyFile(masterKey, repositoryId, { recoveryCode: code }),
    { mode: 0o600, flag: 'wx' },
  );
  return { masterKey, recoveryCode: code };
}

export async function unlockRepository(dir: string, passphrase: string): Promise<RepositoryKeys> {
  const { masterKey } = openKeyFile(await readFile(join(dir, 'keys', 'passphrase.key')), {
    passphrase,
  });
  return deriveKeys(masterKey);
}

/** Pack sinks that write a temporary file and rename it to its name when complete. */
export function packFileSinks(dir: string): OpenPackSink {
  return async () => {
    const tmp = join(dir, 'packs', `.tmp-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx');
    return {
      write: async (bytes) => {
        for (let at = 0; at < bytes.byteLength;) {
          at += (await fh.write(bytes, at, bytes.byteLength - at)).bytesWritten;
        }
      },
      close: async (info) => {
        await fh.sync();
        if ((await fh.stat()).size !== info.size)
          throw new Error(`pack ${info.name} was written short (is the disk full?)`);
        await fh.close();
        await mkdir(join(dir, 'packs', info.name.slice(0, 2)), { recursive: true });
        await rename(tmp, join(dir, 'packs', info.name.slice(0, 2), info.name));
      },
      abort: async () => {
        await fh.close().catch(() => {});
        await rm(tmp, { force: true });
      },
    };
  };
}

export async function saveSnapshot(
  dir: string,
  keys: RepositoryKeys,
  snapshot: Snapshot,
): Promise<string> {
  const { id, bytes } = sealSnapshot(keys, snapshot);
  await writeFile(join(dir, 'snapshots', id), bytes, { flag: 'wx' });
  return id;
}

export interface IndexedBlob {
  readonly pack: string;
  readonly entry: PackEntry;
}

/** Rebuilds the blob index from the pack headers alone (two small reads per pack). */
export async function rebuildIndex(
  dir: string,
  keys: RepositoryKeys,
): Promise<Map<string, IndexedBlob>> {
  const index = new Map<string, IndexedBlob>();
  for (const prefix of await readdir(join(dir, 'packs'))) {
    if (prefix.startsWith('.')) continue;
    for (const name of await readdir(join(dir, 'packs', prefix))) {
      const path = join(dir, 'packs', prefix, name);
      const fh = await open(path, 'r');
      try {
        const entries = await readPackHeader(fileSource(fh, (await fh.stat()).size), keys);
        for (const entry of entries) index.set(toHex(entry.id), { pack: path, entry });
      } finally {
        await fh.close();
      }
    }
  }
  return index;
}

export async function listSnapshots(
  dir: string,
  keys: RepositoryKeys,
): Promise<{ id: string; snapshot: Snapshot }[]> {
  const out = [];
  for (const id of await readdir(join(dir, 'snapshots'))) {
    const bytes = await readFile(join(dir, 'snapshots', id));
    if (snapshotId(bytes) !== id)
      throw new Error(`snapshot file ${id} does not match its name: it is damaged`);
    out.push({ id, snapshot: openSnapshot(keys, bytes) });
  }
  return out.sort((a, b) => (a.snapshot.startNs < b.snapshot.startNs ? -1 : 1));
}

/** Reads one blob's plaintext through the index. */
export async function loadBlob(
  keys: RepositoryKeys,
  index: Map<string, IndexedBlob>,
  id: Uint8Array,
  type: BlobType,
): Promise<Uint8Array> {
  const found = index.get(toHex(id));
  if (!found || found.entry.type !== type) throw new Error(`blob ${toHex(id)} is in no pack`);
  const fh = await open(found.pack, 'r');
  try {
    return await readBlob(fileSource(fh, (await fh.stat()).size), keys, found.entry);
  } finally {
    await fh.close();
  }
}

export function sha256File(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
