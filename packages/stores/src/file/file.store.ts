/**
 * A directory as a store: a USB disk, a mounted share, any folder (`file:///mnt/usb/kv`).
 *
 * Beyond the Store contract:
 * - The directory holds a marker file, `.kinvault-target`, written by `initialise()`
 *   when the target is added. Every call checks it first, so a disk that is not mounted
 *   is an error (FAILED_PRECONDITION), never a write into the empty mount point.
 * - A put writes a temporary file under `.tmp/`, fsyncs it, renames it into place and
 *   fsyncs the directory; temporary files a crash left are removed by `sweep()`.
 * - Listing walks only the folder a prefix names, so the root may hold other files. A
 *   delete removes the folders it leaves empty; a put makes its folder again if a
 *   delete removed it meanwhile.
 * - Sizes come from the file system; SHA-256s are not recorded (`recordsSha256` false):
 *   a check reads the file.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { KinvaultError } from '@kinvault/protocol';
import { checkRange, checkedBytes } from '../body.js';
import { checkKey, checkPrefix } from '../keys.js';
import type { Body, ListPage, ObjectInfo, Range, Store, Usage } from '../store.js';

export const MARKER = '.kinvault-target';
const TMP = '.tmp';

const errno = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code;

export class FileStore implements Store {
  readonly label: string;
  readonly capabilities = {
    rangedReads: true,
    needsRestore: false,
    maxObjectBytes: Number.MAX_SAFE_INTEGER,
    recordsSha256: false,
  };

  constructor(readonly root: string) {
    this.label = `file://${root}`;
  }

  /**
   * Makes `root` a target: creates it (its parent must exist: a mount point is not
   * created) and the marker. Idempotent.
   */
  async initialise(): Promise<void> {
    const parent = await stat(dirname(this.root)).catch(() => null);
    if (!parent?.isDirectory())
      throw new KinvaultError(
        'FAILED_PRECONDITION',
        `${dirname(this.root)} does not exist: is the disk mounted? Mount it, or give a folder that exists.`,
      );
    await mkdir(this.root, { recursive: true });
    await writeFile(join(this.root, MARKER), 'A Kinvault storage target. Do not delete.\n', {
      flag: 'wx',
    }).catch((e: unknown) => {
      if (errno(e) !== 'EEXIST') throw e;
    });
  }

  /** Removes the temporary files of interrupted puts (only while no put is in flight). */
  async sweep(): Promise<void> {
    await this.ready();
    await rm(join(this.root, TMP), { recursive: true, force: true });
  }

  async put(key: string, body: Body): Promise<ObjectInfo> {
    checkKey(key);
    await this.ready();
    const tmpDir = join(this.root, TMP);
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, randomBytes(12).toString('hex'));
    try {
      await this.writeChecked(tmp, key, body);
      const path = this.pathOf(key);
      await this.moveInto(tmp, path);
      await syncDir(dirname(path));
      return { key, size: body.size, sha256: null };
    } catch (e) {
      await rm(tmp, { force: true });
      throw this.failure(e, `writing ${key}`);
    }
  }

  /** Renames into place, making the folder again if a delete emptied and removed it meanwhile. */
  private async moveInto(tmp: string, path: string): Promise<void> {
    for (let tries = 1; ; tries++) {
      await mkdir(dirname(path), { recursive: true });
      try {
        return await rename(tmp, path);
      } catch (e) {
        if (errno(e) !== 'ENOENT' || tries === 3) throw e;
      }
    }
  }

  private async writeChecked(tmp: string, key: string, body: Body): Promise<void> {
    const checked = checkedBytes(body, this.label, key);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      for await (const chunk of checked.chunks())
        for (let done = 0; done < chunk.byteLength;)
          done += (await fh.write(chunk, done, chunk.byteLength - done)).bytesWritten;
      checked.finish();
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async get(key: string, range?: Range): Promise<Readable> {
    const info = await this.head(key);
    if (!info)
      throw new KinvaultError('NOT_FOUND', `${key} is not at ${this.label}.`, { details: { key } });
    const { offset, length } = checkRange(this.label, key, info.size, range);
    if (length === 0) return Readable.from([]);
    return createReadStream(this.pathOf(key), { start: offset, end: offset + length - 1 });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    await this.ready();
    const s = await stat(this.pathOf(key)).catch((e: unknown) => {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
      throw this.failure(e, `reading ${key}`);
    });
    return s?.isFile() ? { key, size: s.size, sha256: null } : null;
  }

  async list(
    prefix: string,
    page: { after?: string | null; limit?: number } = {},
  ): Promise<ListPage> {
    checkPrefix(prefix);
    await this.ready();
    const limit = Math.max(1, Math.min(page.limit ?? 1000, 1000));
    const after = page.after ?? '';
    const keys = (await this.keysUnder(prefix)).filter((k) => k.startsWith(prefix) && k > after);
    const chosen = keys.slice(0, limit);
    const objects: ObjectInfo[] = [];
    for (const key of chosen) {
      const s = await stat(this.pathOf(key)).catch(() => null);
      if (s) objects.push({ key, size: s.size, sha256: null });
    }
    return { objects, next: keys.length > limit ? chosen[chosen.length - 1]! : null };
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.ready();
    await rm(this.pathOf(key), { force: true }).catch((e: unknown) => {
      throw this.failure(e, `deleting ${key}`);
    });
    // The folders it emptied go too (a catalog has one of its own): best effort.
    for (let dir = dirname(this.pathOf(key)); dir !== this.root; dir = dirname(dir))
      if (
        !(await rmdir(dir).then(
          () => true,
          () => false,
        ))
      )
        break;
  }

  async usage(): Promise<Usage> {
    await this.ready();
    const s = await statfs(this.root);
    // Used: all but what this process may still write (the root-reserved blocks count as used).
    return { usedBytes: (s.blocks - s.bavail) * s.bsize, quotaBytes: s.blocks * s.bsize };
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  /**
   * Every key in the folder the prefix names (its part up to the last "/"), sorted;
   * temporary files and the marker excluded. Other folders are not walked, so a store
   * may share its root with other files (the NAS data directory).
   */
  private async keysUnder(prefix: string): Promise<string[]> {
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const entries = await readdir(join(this.root, ...folder.split('/')), {
      recursive: true,
      withFileTypes: true,
    }).catch((e: unknown) => {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return [];
      throw this.failure(e, `listing ${prefix}`);
    });
    const keys: string[] = [];
    for (const e of entries) {
      if (!e.isFile()) continue;
      const rel = relative(this.root, join(e.parentPath, e.name)).split(sep).join('/');
      if (rel === MARKER || rel.startsWith(`${TMP}/`)) continue;
      keys.push(rel);
    }
    return keys.sort();
  }

  /** Throws FAILED_PRECONDITION unless the marker is there (the disk is mounted). */
  private async ready(): Promise<void> {
    const marker = await stat(join(this.root, MARKER)).catch(() => null);
    if (!marker)
      throw new KinvaultError(
        'FAILED_PRECONDITION',
        `${this.root} is not a Kinvault target (no ${MARKER} in it): is the disk mounted? Mount it and try again; nothing was written.`,
        { retryable: true },
      );
  }

  private failure(e: unknown, doing: string): unknown {
    if (e instanceof KinvaultError) return e;
    const code = errno(e);
    if (code === 'ENOSPC' || code === 'EDQUOT')
      return new KinvaultError('DISK_FULL', `${this.root} is full (${doing}).`, { cause: e });
    return new KinvaultError(
      'UNAVAILABLE',
      `${this.label} failed while ${doing}: ${code ?? (e as Error).message}.`,
      { cause: e, retryable: true },
    );
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
