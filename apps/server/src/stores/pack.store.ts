/**
 * The NAS pack store: packs/<first two hex digits>/<name>. A pack enters only by an
 * atomic rename of a verified file (copied into the store's file system first when the
 * uploads folder is on another one).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

/** Flushes a file's bytes to its disk. */
async function syncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

export function packStore(root: string) {
  const path = (name: string) => join(root, name.slice(0, 2), name);
  return {
    path,
    /**
     * Moves a verified file into place, durably: its bytes reach the disk before the
     * rename, and the rename before this returns (the pack is then registered, and the
     * agent deletes its copy).
     */
    async adopt(file: string, name: string): Promise<void> {
      const target = path(name);
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await syncFile(file);
      try {
        await rename(file, target);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        // The uploads folder is on another disk: copy beside the target, then rename.
        const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
        try {
          await copyFile(file, tmp);
          await syncFile(tmp);
          await rename(tmp, target);
        } finally {
          await rm(tmp, { force: true });
        }
        await rm(file, { force: true });
      }
      const dir = await open(dirname(target), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    },
    /** The file's size, or null when there is none (other errors are thrown). */
    async size(name: string): Promise<number | null> {
      return stat(path(name)).then(
        (s) => s.size,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
          throw error;
        },
      );
    },
    /**
     * Moves a pack's file out of the store into `quarantine/` beside it (nothing if there
     * is no file). Nothing in Kinvault deletes a pack file.
     */
    async quarantine(name: string): Promise<void> {
      const aside = join(dirname(root), 'quarantine');
      await mkdir(aside, { recursive: true, mode: 0o700 });
      await rename(path(name), join(aside, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    },
    /** The SHA-256 (hex) of the stored file, or null when there is no such file. */
    async sha256(name: string): Promise<string | null> {
      const hash = createHash('sha256');
      try {
        for await (const piece of createReadStream(path(name), { highWaterMark: 1024 * 1024 }))
          hash.update(piece as Buffer);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
      return hash.digest('hex');
    },
    read(name: string, start?: number, end?: number): Readable {
      // 1 MiB reads: a restore asks for ranges of up to 16 MiB.
      return createReadStream(path(name), { start, end, highWaterMark: 1024 * 1024 });
    },
  };
}

export type PackStore = ReturnType<typeof packStore>;
