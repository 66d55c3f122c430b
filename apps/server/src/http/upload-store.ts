/**
 * Where tus keeps uploads in progress: the uploads directory, one data file and one
 * `.json` sidecar (size, metadata with the owning device, creation time) per upload.
 *
 * Contracts beyond @tus/file-store's:
 * - an upload leaves nothing behind once it is over: finished (its data file moved to
 *   the pack store), refused, terminated, expired or failed for lack of space;
 * - a write that fails keeps reading the request body to its end, so the client gets
 *   the answer instead of a broken connection; a full disk discards the upload and
 *   answers 507 with a message that names no server path;
 * - `sweep()` (at start) removes what a crash left: sidecars without data files and
 *   data files without sidecars, besides expired uploads.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { ERRORS, type Upload } from '@tus/server';
import type { IncomingPack } from '../services/packs.service.js';

/** Upload ids are ours (namingFunction): 32 lowercase hex digits. */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;

export interface DiskFull {
  /** The directory that could not be written. */
  path: string;
  /** Bytes the upload needs in all, when known. */
  neededBytes?: number;
  /** Bytes free for us on that file system when the write failed. */
  freeBytes: number;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** A tus error answer (status and body) for a full disk; the body names no path. */
export function diskFullAnswer(d: DiskFull): { status_code: number; body: string } {
  return {
    status_code: 507,
    body:
      `The coordinator's disk is full: ` +
      (d.neededBytes === undefined ? '' : `this upload needs ${mb(d.neededBytes)} and `) +
      `the NAS has ${mb(d.freeBytes)} free. Nothing of the upload was kept. Free space on ` +
      `the NAS, then run the backup again.\n`,
  };
}

export function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir).catch(() => null);
  return s ? s.bavail * s.bsize : 0;
}

/** What the edge hashed of an upload's bytes as they arrived (from offset 0). */
export interface HashedInTransit {
  sha256: string;
  bytes: number;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class UploadStore extends FileStore {
  constructor(
    directory: string,
    expiryMs: number,
    private readonly onDiskFull: (d: DiskFull) => void,
  ) {
    super({ directory, expirationPeriodInMilliseconds: expiryMs });
    // Lengths are required up front, and bytes come only with PATCH (a POST that also
    // carries them is refused in tus.ts): see onIncomingRequest there.
    this.extensions = ['creation', 'termination', 'expiration'];
  }

  /** The device that created this upload, from its sidecar; undefined if unknown. */
  async ownerOf(id: string): Promise<string | null | undefined> {
    if (!UPLOAD_ID.test(id)) return undefined;
    const info = await this.configstore.get(id);
    return info ? (info.metadata?.device ?? null) : undefined;
  }

  /**
   * A finished upload as the packs service takes it. Its SHA-256 is the one hashed in
   * transit when that covered every byte of the data file, else the file is read back
   * (a resumed upload). Moving it renames the data file into the pack store; `discard`
   * removes what is left either way.
   */
  incomingPack(id: string, declaredName: string, hashed?: HashedInTransit): IncomingPack {
    const file = join(this.directory, id);
    let size: Promise<number> | undefined;
    const sizeOnce = () => (size ??= stat(file).then((s) => s.size));
    return {
      declaredName,
      size: sizeOnce,
      sha256: async () => (hashed?.bytes === (await sizeOnce()) ? hashed.sha256 : sha256File(file)),
      moveInto: (store, name) => store.adopt(file, name),
    };
  }

  /** Deletes the upload's data file and sidecar, whichever exist. */
  async discard(id: string): Promise<void> {
    if (!UPLOAD_ID.test(id)) return;
    await Promise.all([
      rm(join(this.directory, id), { force: true }),
      rm(join(this.directory, `${id}.json`), { force: true }),
    ]);
  }

  private async diskFull(
    id: string,
    neededBytes: number | undefined,
    cause: unknown,
  ): Promise<never> {
    await this.discard(id).catch(() => {});
    const d = { path: this.directory, neededBytes, freeBytes: await freeBytes(this.directory) };
    this.onDiskFull(d);
    throw Object.assign(diskFullAnswer(d), { cause });
  }

  override async create(file: Upload): Promise<Upload> {
    try {
      return await super.create(file);
    } catch (error) {
      await this.discard(file.id).catch(() => {});
      if (isNoSpace(error)) return this.diskFull(file.id, file.size, error);
      throw error;
    }
  }

  override async remove(id: string): Promise<void> {
    if ((await this.ownerOf(id)) === undefined) throw ERRORS.FILE_NOT_FOUND;
    await this.discard(id);
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const file = await open(join(this.directory, id), 'r+');
    let position = offset;
    let failure: unknown;
    try {
      for await (const piece of readable as AsyncIterable<Buffer>) {
        // After a failed write the rest of the body is read and dropped: the client is
        // still sending, and must get the answer rather than a reset connection.
        if (failure !== undefined) continue;
        try {
          let done = 0;
          while (done < piece.byteLength) {
            const { bytesWritten } = await file.write(
              piece,
              done,
              piece.byteLength - done,
              position,
            );
            done += bytesWritten;
            position += bytesWritten;
          }
        } catch (error) {
          failure = error;
        }
      }
    } finally {
      await file.close();
    }
    if (failure === undefined) return position;
    if (isNoSpace(failure)) {
      const info = await this.configstore.get(id);
      return this.diskFull(id, info?.size, failure);
    }
    throw failure;
  }

  /** Deletes every incomplete upload older than the expiry period. */
  override async deleteExpired(): Promise<number> {
    const expiry = this.getExpiration();
    if (expiry <= 0) return 0;
    let deleted = 0;
    for (const id of await this.ids()) {
      const info = await this.configstore.get(id);
      const created = Date.parse(info?.creation_date ?? '');
      if (info && Number.isFinite(created) && Date.now() > created + expiry) {
        await this.discard(id);
        deleted++;
      }
    }
    return deleted;
  }

  /**
   * What a crash left (only while no request is in flight: a new upload briefly has
   * a data file without a sidecar): halves of uploads, then expired uploads.
   */
  async sweep(): Promise<{ orphans: number; expired: number }> {
    const names = new Set(await readdir(this.directory));
    let orphans = 0;
    for (const name of names) {
      const id = name.endsWith('.json') ? name.slice(0, -5) : name;
      if (!UPLOAD_ID.test(id)) continue;
      const other = name === id ? `${id}.json` : id;
      if (!names.has(other)) {
        await rm(join(this.directory, name), { force: true });
        orphans++;
      }
    }
    return { orphans, expired: await this.deleteExpired() };
  }

  /** Ids of uploads that have both halves. */
  private async ids(): Promise<string[]> {
    const names = new Set(await readdir(this.directory));
    return [...names].filter((n) => UPLOAD_ID.test(n) && names.has(`${n}.json`));
  }
}
