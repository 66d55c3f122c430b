/**
 * The server's state on disk, so that a server stopped and started again on the same
 * directory keeps its files and its open upload sessions:
 *   root.json            the id of the "My Drive" root folder
 *   files/<id>.json      a file's metadata; content/<id> its bytes
 *   sessions/<id>.json   a resumable upload session; sessions/<id>.part the bytes so far
 * Metadata is written to a temporary name and renamed, so a crash leaves old or new.
 */
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

export const FOLDER_MIME = 'application/vnd.google-apps.folder';

export interface FileMeta {
  id: string;
  name: string;
  mimeType: string;
  parents: string[];
  appProperties: Record<string, string>;
  properties: Record<string, string>;
  description?: string;
  trashed: boolean;
  createdTime: string;
  modifiedTime: string;
  /** Content facts, for files with binary content only. */
  size?: number;
  md5Checksum?: string;
  sha1Checksum?: string;
  sha256Checksum?: string;
}

/** The metadata a client asked for when it created a file. */
export type NewFile = Pick<
  FileMeta,
  'name' | 'mimeType' | 'parents' | 'appProperties' | 'properties'
> & {
  description?: string;
};

export interface Session {
  id: string;
  file: NewFile;
  /** X-Upload-Content-Length, or the total a Content-Range first declared. */
  total?: number;
  createdAt: number;
  /** The `fields` of the initiating request, applied to the final answer. */
  fields?: string;
  /** Set once the upload is complete. */
  fileId?: string;
}

export function newId(): string {
  return '1' + randomBytes(24).toString('base64url').slice(0, 32);
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path + '.tmp', JSON.stringify(value));
  renameSync(path + '.tmp', path);
}

export class DiskState {
  readonly files = new Map<string, FileMeta>();
  readonly sessions = new Map<string, Session>();
  readonly rootId: string;

  constructor(private readonly dir: string) {
    for (const sub of ['files', 'content', 'sessions'])
      mkdirSync(join(dir, sub), { recursive: true });
    const rootPath = join(dir, 'root.json');
    if (!existsSync(rootPath)) writeJson(rootPath, { rootId: newId() });
    this.rootId = (JSON.parse(readFileSync(rootPath, 'utf8')) as { rootId: string }).rootId;
    const now = new Date().toISOString();
    this.files.set(this.rootId, {
      ...{ id: this.rootId, name: 'My Drive', mimeType: FOLDER_MIME, parents: [], trashed: false },
      ...{ appProperties: {}, properties: {}, createdTime: now, modifiedTime: now },
    });
    for (const [sub, map] of [
      ['files', this.files],
      ['sessions', this.sessions],
    ] as const) {
      for (const name of readdirSync(join(dir, sub))) {
        if (!name.endsWith('.json')) continue;
        const value = JSON.parse(readFileSync(join(dir, sub, name), 'utf8')) as FileMeta & Session;
        map.set(value.id, value);
      }
    }
  }

  contentPath(id: string): string {
    return join(this.dir, 'content', id);
  }

  partPath(id: string): string {
    return join(this.dir, 'sessions', id + '.part');
  }

  /** Bytes a session has received so far (what is on disk, whatever the connection did). */
  received(id: string): number {
    const path = this.partPath(id);
    return existsSync(path) ? statSync(path).size : 0;
  }

  saveFile(meta: FileMeta): void {
    this.files.set(meta.id, meta);
    writeJson(join(this.dir, 'files', meta.id + '.json'), meta);
  }

  deleteFile(id: string): void {
    this.files.delete(id);
    rmSync(join(this.dir, 'files', id + '.json'), { force: true });
    rmSync(this.contentPath(id), { force: true });
  }

  saveSession(session: Session): void {
    this.sessions.set(session.id, session);
    writeJson(join(this.dir, 'sessions', session.id + '.json'), session);
  }

  deleteSession(id: string): void {
    this.sessions.delete(id);
    rmSync(join(this.dir, 'sessions', id + '.json'), { force: true });
    rmSync(this.partPath(id), { force: true });
  }

  /** Bytes stored, counting trashed files as Drive does. */
  usage(): { total: number; trash: number } {
    let total = 0;
    let trash = 0;
    for (const f of this.files.values()) {
      total += f.size ?? 0;
      if (f.trashed) trash += f.size ?? 0;
    }
    return { total, trash };
  }
}
