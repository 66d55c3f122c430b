/**
 * tus UrlStorage persisted in one JSON file in the agent's state directory, so an
 * interrupted pack upload resumes after a restart. Writes are atomic (temp + rename).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { PreviousUpload, UrlStorage } from 'tus-js-client';

type Entries = Record<string, PreviousUpload & { fingerprint: string }>;

export class JsonFileUrlStorage implements UrlStorage {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly path: string) {}

  private async load(): Promise<Entries> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Entries;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      // A damaged file only costs re-sending the uploads it described.
      return {};
    }
  }

  private async save(entries: Entries): Promise<void> {
    const tmp = `${this.path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(entries), { mode: 0o600 });
    await rename(tmp, this.path);
  }

  /** Serialises read-modify-write cycles within this process. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  findAllUploads(): Promise<PreviousUpload[]> {
    return this.locked(async () =>
      Object.entries(await this.load()).map(([key, u]) => ({ ...u, urlStorageKey: key })),
    );
  }

  findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]> {
    return this.locked(async () =>
      Object.entries(await this.load())
        .filter(([, u]) => u.fingerprint === fingerprint)
        .map(([key, u]) => ({ ...u, urlStorageKey: key })),
    );
  }

  removeUpload(urlStorageKey: string): Promise<void> {
    return this.locked(async () => {
      const entries = await this.load();
      delete entries[urlStorageKey];
      await this.save(entries);
    });
  }

  addUpload(fingerprint: string, upload: PreviousUpload): Promise<string> {
    return this.locked(async () => {
      const entries = await this.load();
      const key = `tus::${fingerprint}::${randomBytes(6).toString('hex')}`;
      entries[key] = { ...upload, fingerprint };
      await this.save(entries);
      return key;
    });
  }
}
