/**
 * The server's state on disk, mirrored in memory: buckets, objects (data + metadata JSON),
 * multipart uploads and their parts. Every change is written (temp file + rename) before it
 * is answered, so a server restarted on the same directory finds everything.
 *
 * Layout: buckets/<bucket>/<sha256(key)>.json and .<id>.data; uploads/<id>/upload.json,
 * <n>.json, <n>.data; tmp/ for bodies being received.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Algorithm, ChecksumType } from './checksums.js';

export interface Checksum {
  algorithm: Algorithm;
  value: string;
  type: ChecksumType;
}

export interface RestoreState {
  days: number;
  tier: string;
  requestedAt: number;
  /** When the restore completes by itself (a configured delay); absent: only completeRestores() does. */
  readyAt?: number;
  completedAt?: number;
  expiresAt?: number;
}

export interface ObjectMeta {
  key: string;
  size: number;
  /** Quoted, as in the ETag header. */
  etag: string;
  lastModified: number;
  storageClass: string;
  headers: Record<string, string>;
  checksum: Checksum;
  /** Multipart objects: their parts (checksums only if the upload had an algorithm). */
  parts?: { partNumber: number; size: number; checksum?: string }[];
  restore?: RestoreState;
  file: string;
}

export interface UploadMeta {
  uploadId: string;
  bucket: string;
  key: string;
  initiated: number;
  storageClass: string;
  headers: Record<string, string>;
  checksumAlgorithm?: Algorithm;
  checksumType?: ChecksumType;
}

export interface PartMeta {
  partNumber: number;
  size: number;
  etag: string;
  lastModified: number;
  checksum?: { algorithm: Algorithm; value: string };
}

const keyFile = (key: string) => createHash('sha256').update(key).digest('hex');

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

async function readJsonFiles<T>(dir: string): Promise<T[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8')) as T));
}

export class Store {
  private readonly buckets = new Map<string, Map<string, ObjectMeta>>();
  private readonly sorted = new Map<string, string[]>();
  private readonly uploads = new Map<string, { meta: UploadMeta; parts: Map<number, PartMeta> }>();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<Store> {
    const store = new Store(dir);
    for (const sub of ['buckets', 'uploads', 'tmp'])
      await mkdir(join(dir, sub), { recursive: true });
    await rm(join(dir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(dir, 'tmp'));
    for (const name of await readdir(join(dir, 'buckets'))) {
      const objects = await readJsonFiles<ObjectMeta>(join(dir, 'buckets', name));
      store.buckets.set(name, new Map(objects.map((o) => [o.key, o])));
    }
    for (const id of await readdir(join(dir, 'uploads'))) {
      const folder = join(dir, 'uploads', id);
      const text = await readFile(join(folder, 'upload.json'), 'utf8').catch(() => undefined);
      if (text === undefined) continue; // created but never answered: the client has no id for it
      const meta = JSON.parse(text) as UploadMeta;
      const parts = (await readJsonFiles<PartMeta>(folder)).filter((p) => 'partNumber' in p);
      store.uploads.set(id, { meta, parts: new Map(parts.map((p) => [p.partNumber, p])) });
    }
    return store;
  }

  /** A fresh path for a body being received. */
  tmpPath(): string {
    return join(this.dir, 'tmp', randomUUID());
  }

  hasBucket(bucket: string): boolean {
    return this.buckets.has(bucket);
  }

  bucketNames(): string[] {
    return [...this.buckets.keys()].sort();
  }

  async createBucket(bucket: string): Promise<void> {
    await mkdir(join(this.dir, 'buckets', bucket));
    this.buckets.set(bucket, new Map());
  }

  async deleteBucket(bucket: string): Promise<void> {
    await rm(join(this.dir, 'buckets', bucket), { recursive: true });
    this.buckets.delete(bucket);
    this.sorted.delete(bucket);
  }

  objectCount(bucket: string): number {
    return this.buckets.get(bucket)?.size ?? 0;
  }

  getObject(bucket: string, key: string): ObjectMeta | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  dataPath(bucket: string, meta: ObjectMeta): string {
    return join(this.dir, 'buckets', bucket, meta.file);
  }

  /** The bucket's keys in S3's order (UTF-8 bytes). */
  keys(bucket: string): string[] {
    let keys = this.sorted.get(bucket);
    if (!keys) {
      keys = [...this.buckets.get(bucket)!.keys()].sort((a, b) =>
        Buffer.compare(Buffer.from(a), Buffer.from(b)),
      );
      this.sorted.set(bucket, keys);
    }
    return keys;
  }

  /** Stores an object whose data is at `tmp` (moved into place). */
  async putObject(
    bucket: string,
    meta: Omit<ObjectMeta, 'file'>,
    tmp: string,
  ): Promise<ObjectMeta> {
    const file = `.${keyFile(meta.key)}.${randomUUID()}.data`;
    await rename(tmp, join(this.dir, 'buckets', bucket, file));
    const old = this.getObject(bucket, meta.key);
    const stored = { ...meta, file };
    await this.saveObject(bucket, stored);
    if (old) await unlink(this.dataPath(bucket, old)).catch(() => undefined);
    return stored;
  }

  async saveObject(bucket: string, meta: ObjectMeta): Promise<void> {
    await writeJson(join(this.dir, 'buckets', bucket, `${keyFile(meta.key)}.json`), meta);
    const objects = this.buckets.get(bucket)!;
    if (!objects.has(meta.key)) this.sorted.delete(bucket);
    objects.set(meta.key, meta);
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    const old = this.getObject(bucket, key);
    if (!old) return;
    await unlink(join(this.dir, 'buckets', bucket, `${keyFile(key)}.json`));
    this.buckets.get(bucket)!.delete(key);
    this.sorted.delete(bucket);
    await unlink(this.dataPath(bucket, old)).catch(() => undefined);
  }

  async createUpload(meta: UploadMeta): Promise<void> {
    await mkdir(join(this.dir, 'uploads', meta.uploadId));
    await writeJson(join(this.dir, 'uploads', meta.uploadId, 'upload.json'), meta);
    this.uploads.set(meta.uploadId, { meta, parts: new Map() });
  }

  getUpload(uploadId: string): UploadMeta | undefined {
    return this.uploads.get(uploadId)?.meta;
  }

  listUploads(bucket: string): UploadMeta[] {
    return [...this.uploads.values()].map((u) => u.meta).filter((m) => m.bucket === bucket);
  }

  partPath(uploadId: string, partNumber: number): string {
    return join(this.dir, 'uploads', uploadId, `${partNumber}.data`);
  }

  /** Parts in ascending order. */
  parts(uploadId: string): PartMeta[] {
    return [...this.uploads.get(uploadId)!.parts.values()].sort(
      (a, b) => a.partNumber - b.partNumber,
    );
  }

  getPart(uploadId: string, partNumber: number): PartMeta | undefined {
    return this.uploads.get(uploadId)?.parts.get(partNumber);
  }

  async putPart(uploadId: string, part: PartMeta, tmp: string): Promise<void> {
    const upload = this.uploads.get(uploadId);
    if (!upload) throw new Error('upload vanished');
    await rename(tmp, this.partPath(uploadId, part.partNumber));
    await writeJson(join(this.dir, 'uploads', uploadId, `${part.partNumber}.json`), part);
    upload.parts.set(part.partNumber, part);
  }

  async deleteUpload(uploadId: string): Promise<void> {
    this.uploads.delete(uploadId);
    await rm(join(this.dir, 'uploads', uploadId), { recursive: true, force: true });
  }
}
