/**
 * A Google Drive folder as a store (`gdrive://FolderName?credentials=FILE&token=FILE`).
 * The only module that imports googleapis.
 *
 * Beyond the Store contract:
 * - One Drive file per object, in one folder at the top of the Drive (found by name, or
 *   created, on first use; `drive.file` scope: Kinvault sees only what it created). The
 *   file name is the key with "/" written as "~", which no key contains.
 * - A put uploads a new file (multipart up to `multipartMaxBytes`, else a resumable
 *   upload in chunks that resumes from the server's Range after a failure), with the
 *   SHA-256 in `appProperties.sha256`, checks Drive's `sha256Checksum`, then deletes the
 *   other files of that name: the newest (createdTime, then id) wins, so racing puts
 *   end with one file and a failed put leaves the old one.
 * - With an UploadResume, a resumable upload's session URI is saved as soon as Drive
 *   gives it, before any byte is sent. A put that finds it asks Drive how much it has
 *   (`Content-Range: bytes *\/SIZE`), reads past those bytes of the body (hashing them)
 *   and sends the rest; a session that ended (404, 410) starts afresh. The URI lets
 *   anyone holding it upload into the Drive: it never goes into a message or a log.
 * - Listing reads the whole folder (Drive cannot filter names by range) and sorts by key.
 * - Rate limits and 5xx are retried here, with a short backoff, 3 tries in all.
 * - googleapis (a second to load) is imported on first use, not with the module.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as GoogleApis from 'googleapis';
import type { Auth, drive_v3 } from 'googleapis';
import { KinvaultError } from '@kinvault/protocol';
import { checkRange, checkedBytes } from '../body.js';
import { checkKey, checkPrefix } from '../keys.js';
import { decodeSession, encodeSession } from './upload-state.js';
import type {
  Body,
  ListPage,
  ObjectInfo,
  PutOptions,
  Range,
  Store,
  UploadResume,
  Usage,
} from '../store.js';
import { needsAuthorisationDetails } from './needs-auth.js';

const FOLDER_MIME = 'application/vnd.google-apps.folder';
const OCTETS = 'application/octet-stream';
const FILE_FIELDS = 'id,name,size,appProperties,sha256Checksum,createdTime';
const UNIT = 256 * 1024;
const TRIES = 3;

export interface GDriveStoreOptions {
  folder: string;
  /** Where the OAuth client and refresh token are read from (unless `auth` is given). */
  credentialsFile?: string;
  tokenFile?: string;
  /** An authorised client to use instead of the files (tests). */
  auth?: Auth.OAuth2Client;
  /** The API's root, ending in "/" (tests; https://www.googleapis.com/ by default). */
  rootUrl?: string;
  /** Resumable chunk size, a multiple of 256 KiB; 8 MiB by default. */
  chunkBytes?: number;
  /** Bodies up to this size go in one multipart upload; 5 MiB by default. */
  multipartMaxBytes?: number;
  /** First backoff after a rate limit, doubled each try; 500 ms by default. */
  backoffMs?: number;
}

type DriveFile = drive_v3.Schema$File;
type GaxiosError = InstanceType<Sdk['Common']['GaxiosError']>;

interface Session {
  auth: Auth.OAuth2Client;
  drive: drive_v3.Drive;
  folderId: string;
}

const nameOf = (key: string) => key.replaceAll('/', '~');

function keyOf(name: string | null | undefined): string | null {
  const key = (name ?? '').replaceAll('~', '/');
  try {
    checkKey(key);
    return key;
  } catch {
    return null;
  }
}

/** Newest first: createdTime, then id, so every caller picks the same winner. */
function newestFirst(a: DriveFile, b: DriveFile): number {
  const ta = a.createdTime ?? '';
  const tb = b.createdTime ?? '';
  if (ta !== tb) return ta < tb ? 1 : -1;
  return (a.id ?? '') < (b.id ?? '') ? 1 : -1;
}

type Sdk = typeof GoogleApis;
let sdk: Sdk | undefined;
const loadSdk = async () => (sdk ??= await import('googleapis'));

const quote = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class GDriveStore implements Store {
  readonly label: string;
  readonly capabilities = {
    rangedReads: true,
    needsRestore: false,
    maxObjectBytes: 5 * 1024 ** 4, // Drive's limit per file
    recordsSha256: true,
  };
  private readonly rootUrl: string;
  private readonly chunkBytes: number;
  private readonly multipartMaxBytes: number;
  private readonly backoffMs: number;
  private session: Promise<Session> | null = null;

  constructor(private readonly options: GDriveStoreOptions) {
    this.label = `gdrive://${encodeURIComponent(options.folder)}`;
    this.rootUrl = options.rootUrl ?? 'https://www.googleapis.com/';
    this.chunkBytes = options.chunkBytes ?? 8 * 1024 * 1024;
    if (this.chunkBytes <= 0 || this.chunkBytes % UNIT !== 0)
      throw new KinvaultError('INVALID_ARGUMENT', 'The chunk size is a multiple of 256 KiB.');
    this.multipartMaxBytes = options.multipartMaxBytes ?? 5 * 1024 * 1024;
    this.backoffMs = options.backoffMs ?? 500;
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    return this.inFolder(() => this.putOnce(key, body, options));
  }

  private async putOnce(key: string, body: Body, options: PutOptions): Promise<ObjectInfo> {
    checkKey(key);
    const { resume } = options;
    const s = await this.ready();
    const checked = checkedBytes(body, this.label, key);
    const meta: DriveFile = {
      name: nameOf(key),
      parents: [s.folderId],
      mimeType: OCTETS,
      appProperties: { sha256: body.sha256 },
    };
    const made =
      body.size <= this.multipartMaxBytes
        ? await this.multipart(s, meta, checked, key)
        : await this.resumable(s, meta, body, checked, key, resume).catch(async (e: unknown) => {
            // Kept for the next put unless it cannot go on from it (clearing is best
            // effort: a put that finds a session ended starts afresh).
            if (!(e instanceof KinvaultError && e.retryable) || isSessionEnd(e))
              await resume?.clear().catch(() => undefined);
            throw e;
          });
    await resume?.clear(); // the session made its file: done with
    if (made.size !== String(body.size) || (made.sha256Checksum ?? body.sha256) !== body.sha256) {
      await this.deleteFile(s, made.id!, key);
      throw new KinvaultError(
        'CHECKSUM_MISMATCH',
        `Google Drive stored other bytes for ${key} at ${this.label} than were sent (size ${made.size}, SHA-256 ${made.sha256Checksum}); the copy was deleted. Try again.`,
        { details: { key }, retryable: true },
      );
    }
    await this.keepNewest(s, key);
    return { key, size: body.size, sha256: body.sha256 };
  }

  private async multipart(
    s: Session,
    meta: DriveFile,
    checked: ReturnType<typeof checkedBytes>,
    key: string,
  ): Promise<DriveFile> {
    const parts: Uint8Array[] = [];
    try {
      for await (const chunk of checked.chunks()) parts.push(chunk);
    } catch (e) {
      throw this.sourceFailure(e, key);
    }
    checked.finish();
    const bytes = Buffer.concat(parts);
    const res = await this.call(`writing ${key}`, () =>
      s.drive.files.create(
        {
          requestBody: meta,
          media: { mimeType: OCTETS, body: Readable.from([bytes]) },
          fields: FILE_FIELDS,
        },
        { rootUrl: this.rootUrl, retry: false },
      ),
    );
    return res.data;
  }

  /**
   * A resumable upload by hand: chunks of `chunkBytes` from the offset the server has,
   * the last one sent only once the body checked out (so a bad body creates nothing).
   * After a failed chunk, a status query gives the offset to go on from.
   */
  private async resumable(
    s: Session,
    meta: DriveFile,
    body: Body,
    checked: ReturnType<typeof checkedBytes>,
    key: string,
    resume?: UploadResume,
  ): Promise<DriveFile> {
    const doing = `writing ${key}`;
    const size = body.size;
    const session = await this.openSession(s, meta, body, doing, resume);
    if ('file' in session) return session.file; // finished before an interruption
    const { url } = session;
    const source = checked.chunks()[Symbol.asyncIterator]();
    let exhausted = false;
    const pull = async (): Promise<Buffer | null> => {
      const next = await source.next().catch((e: unknown) => {
        throw this.sourceFailure(e, key);
      });
      if (!next.done)
        return Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      exhausted = true;
      checked.finish();
      return null;
    };
    let base = session.received; // bytes the server has
    let held: Buffer[] = []; // bytes from `base` on, not yet confirmed
    let heldBytes = 0;
    // What the server holds already is read (and hashed) but not sent again.
    for (let skipped = 0; skipped < base;) {
      const chunk = await pull();
      if (!chunk) break;
      const rest = chunk.subarray(Math.min(chunk.length, base - skipped));
      skipped += chunk.length;
      if (rest.length > 0) {
        held.push(rest);
        heldBytes += rest.length;
      }
    }
    let failures = 0;
    for (;;) {
      while (!exhausted && (heldBytes < this.chunkBytes || base + this.chunkBytes >= size)) {
        const chunk = await pull();
        if (chunk) {
          held.push(chunk);
          heldBytes += chunk.length;
        }
      }
      const data = Buffer.concat(held);
      const piece = data.subarray(0, exhausted ? data.length : this.chunkBytes);
      let answer: { file: DriveFile } | { received: number };
      try {
        answer = await this.sendChunk(s, url, base, piece, size);
      } catch (e) {
        if (isGone(e)) throw this.sessionExpired(doing);
        const err = this.sessionFailure(e, doing);
        if (!err.retryable || ++failures >= TRIES) throw err;
        await sleep(this.backoffMs * 2 ** (failures - 1));
        answer = await this.uploadStatus(s, url, size, doing);
      }
      if ('file' in answer) return answer.file;
      if (answer.received < base) throw this.sessionExpired(doing); // it lost bytes we no longer hold
      if (answer.received > base) failures = 0;
      held = [data.subarray(answer.received - base)];
      heldBytes = held[0]!.length;
      base = answer.received;
    }
  }

  /**
   * The session a saved state names, with how much Drive has of it (or its file, when it
   * finished); otherwise a new session, saved before any byte is sent.
   */
  private async openSession(
    s: Session,
    meta: DriveFile,
    body: Body,
    doing: string,
    resume?: UploadResume,
  ): Promise<{ file: DriveFile } | { url: string; received: number }> {
    const saved = decodeSession((await resume?.load()) ?? null, `${this.rootUrl}upload/`);
    if (saved && saved.size === body.size && saved.sha256 === body.sha256) {
      const answer = await this.uploadStatus(s, saved.uri, body.size, doing).catch((e: unknown) => {
        if (isSessionEnd(e)) return null; // expired or gone: start afresh
        throw e;
      });
      if (answer) return 'file' in answer ? answer : { url: saved.uri, ...answer };
    }
    const url = await this.startUpload(s, meta, body.size, doing);
    await resume?.save(encodeSession({ uri: url, size: body.size, sha256: body.sha256 }));
    return { url, received: 0 };
  }

  private async startUpload(s: Session, meta: DriveFile, size: number, doing: string) {
    const res = await this.call(doing, () =>
      s.auth.request({
        url: `${this.rootUrl}upload/drive/v3/files?uploadType=resumable&fields=${FILE_FIELDS}`,
        method: 'POST',
        headers: { 'X-Upload-Content-Length': String(size), 'X-Upload-Content-Type': OCTETS },
        data: meta,
        retry: false,
      }),
    );
    const location = res.headers.get('location');
    if (!location)
      throw new KinvaultError('UNAVAILABLE', `Google Drive gave no upload session (${doing}).`, {
        retryable: true,
      });
    return location;
  }

  private async sendChunk(
    s: Session,
    url: string,
    base: number,
    piece: Buffer,
    size: number,
  ): Promise<{ file: DriveFile } | { received: number }> {
    const range =
      piece.length === 0 ? `bytes */${size}` : `bytes ${base}-${base + piece.length - 1}/${size}`;
    const res = await s.auth.request<DriveFile>({
      url,
      method: 'PUT',
      headers: { 'Content-Range': range },
      data: piece,
      validateStatus: (status) => status === 200 || status === 201 || status === 308,
      retry: false,
    });
    return uploadAnswer(res);
  }

  private async uploadStatus(s: Session, url: string, size: number, doing: string) {
    let res;
    try {
      res = await this.call(
        doing,
        () =>
          s.auth.request<DriveFile>({
            url,
            method: 'PUT',
            headers: { 'Content-Range': `bytes */${size}` },
            validateStatus: (status) => status === 200 || status === 201 || status === 308,
            retry: false,
          }),
        () => {
          throw this.sessionExpired(doing);
        },
      );
    } catch (e) {
      throw this.sessionFailure(e, doing);
    }
    return uploadAnswer(res);
  }

  /** A failure of a request to a session URI: as `failure`, without the request (it holds the URI). */
  private sessionFailure(e: unknown, doing: string): KinvaultError {
    const err = this.failure(e, doing);
    if (err.cause === undefined) return err;
    return new KinvaultError(err.code, err.message, {
      retryable: err.retryable,
      details: err.details,
    });
  }

  /** Deletes every file of the key but the newest (racing or replaced puts). */
  private async keepNewest(s: Session, key: string): Promise<void> {
    const [, ...older] = await this.filesOf(s, key);
    for (const f of older) await this.deleteFile(s, f.id!, key);
  }

  get(key: string, range?: Range): Promise<Readable> {
    return this.inFolder(() => this.getOnce(key, range));
  }

  private async getOnce(key: string, range?: Range): Promise<Readable> {
    checkKey(key);
    const s = await this.ready();
    const [file] = await this.filesOf(s, key);
    if (!file) throw this.notFound(key);
    const { offset, length } = checkRange(this.label, key, Number(file.size ?? 0), range);
    if (length === 0) return Readable.from([]);
    const headers = range ? { Range: `bytes=${offset}-${offset + length - 1}` } : {};
    const res = await this.call(
      `reading ${key}`,
      () =>
        s.drive.files.get(
          { fileId: file.id!, alt: 'media' },
          { responseType: 'stream', headers, retry: false },
        ),
      () => {
        throw this.notFound(key);
      },
    );
    return res.data as unknown as Readable;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    const [file] = await this.inFolder(async () => this.filesOf(await this.ready(), key));
    return file ? info(key, file) : null;
  }

  list(prefix: string, page: { after?: string | null; limit?: number } = {}): Promise<ListPage> {
    return this.inFolder(() => this.listOnce(prefix, page));
  }

  private async listOnce(
    prefix: string,
    page: { after?: string | null; limit?: number },
  ): Promise<ListPage> {
    checkPrefix(prefix);
    const s = await this.ready();
    const limit = Math.max(1, Math.min(page.limit ?? 1000, 1000));
    const after = page.after ?? '';
    const newest = new Map<string, DriveFile>();
    for (const f of (await this.folderFiles(s, '')).sort(newestFirst)) {
      const key = keyOf(f.name);
      if (key !== null && key.startsWith(prefix) && key > after && !newest.has(key))
        newest.set(key, f);
    }
    const keys = [...newest.keys()].sort();
    const chosen = keys.slice(0, limit);
    return {
      objects: chosen.map((k) => info(k, newest.get(k)!)),
      next: keys.length > limit ? chosen[chosen.length - 1]! : null,
    };
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.inFolder(async () => {
      const s = await this.ready();
      for (const f of await this.filesOf(s, key)) await this.deleteFile(s, f.id!, key);
    });
  }

  /**
   * Runs `op` in the folder. The folder's id is kept from the first use; should Drive
   * answer 404 for it (the folder was deleted behind our back, in the Drive's web page),
   * the folder is found or created again and `op` runs once more in it: a put stores its
   * object anew, a read finds nothing there. What the old folder held is gone; the
   * staging check finds those copies missing and places them again.
   */
  private async inFolder<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (!isFolderGone(e)) throw e;
      this.session = null;
      return op();
    }
  }

  async usage(): Promise<Usage> {
    const s = await this.ready();
    const res = await this.call('reading the storage quota', () =>
      s.drive.about.get({ fields: 'storageQuota(limit,usage)' }, { retry: false }),
    );
    const q = res.data.storageQuota;
    const num = (v: string | null | undefined) => (v ? Number(v) : null);
    return { usedBytes: num(q?.usage), quotaBytes: num(q?.limit) };
  }

  private async deleteFile(s: Session, id: string, key: string): Promise<void> {
    // Gone already (a racing put or delete took it): that is what was wanted.
    await this.call(
      `deleting ${key}`,
      () => s.drive.files.delete({ fileId: id }, { retry: false }),
      () => undefined,
    );
  }

  /** The key's files, newest first. */
  private async filesOf(s: Session, key: string): Promise<DriveFile[]> {
    return (await this.folderFiles(s, ` and name = ${quote(nameOf(key))}`)).sort(newestFirst);
  }

  /** Every file in the folder matching the extra query, across pages. */
  private async folderFiles(s: Session, extra: string): Promise<DriveFile[]> {
    const q = `${quote(s.folderId)} in parents and trashed = false${extra}`;
    const out: DriveFile[] = [];
    let pageToken: string | undefined;
    do {
      const res = await this.call('listing the folder', () =>
        s.drive.files.list(
          {
            q,
            orderBy: 'name',
            pageSize: 1000,
            pageToken,
            spaces: 'drive',
            fields: `nextPageToken,files(${FILE_FIELDS})`,
          },
          { retry: false },
        ),
      );
      out.push(...(res.data.files ?? []));
      pageToken = res.data.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }

  /** The client and the folder's id, once; a failure is not remembered. */
  private ready(): Promise<Session> {
    this.session ??= this.connect().catch((e: unknown) => {
      this.session = null;
      throw this.failure(e, `opening the folder`);
    });
    return this.session;
  }

  private async connect(): Promise<Session> {
    const { google } = await loadSdk();
    const auth = this.options.auth ?? (await this.authFromFiles(google));
    const drive = google.drive({ version: 'v3', auth, rootUrl: this.rootUrl });
    const find = async () => {
      const res = await this.call('finding the folder', () =>
        drive.files.list(
          {
            q: `name = ${quote(this.options.folder)} and mimeType = '${FOLDER_MIME}' and trashed = false`,
            fields: 'files(id,createdTime)',
            spaces: 'drive',
          },
          { retry: false },
        ),
      );
      // The oldest, should two have been created at once.
      return (res.data.files ?? []).sort(newestFirst).at(-1)?.id ?? null;
    };
    let folderId = await find();
    if (!folderId) {
      await this.call('creating the folder', () =>
        drive.files.create(
          { requestBody: { name: this.options.folder, mimeType: FOLDER_MIME }, fields: 'id' },
          { retry: false },
        ),
      );
      folderId = await find();
    }
    if (!folderId) throw this.folderGone();
    return { auth, drive, folderId };
  }

  private async authFromFiles(google: Sdk['google']): Promise<Auth.OAuth2Client> {
    const { credentialsFile, tokenFile } = this.options;
    if (!credentialsFile || !tokenFile)
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `${this.label} needs credentials=FILE and token=FILE in its URL.`,
      );
    // The client first: without it no authorisation can be given, so that is what to fix.
    const client = await readJsonFile(credentialsFile, 'OAuth client (credentials)');
    const mode = await stat(tokenFile).then(
      (st) => st.mode,
      () => null,
    );
    if (mode === null) throw this.missingToken(tokenFile);
    if (mode & 0o077)
      throw new KinvaultError(
        'FAILED_PRECONDITION',
        `The Google Drive token file ${tokenFile} can be read by other users of this computer. Run "chmod 600 ${tokenFile}" and try again.`,
      );
    const token = await readJsonFile(tokenFile, 'token');
    const refresh = token['refresh_token'];
    if (typeof refresh !== 'string' || !refresh) throw this.missingToken(tokenFile);
    return sharedClient(google, credentialsFile, client, refresh);
  }

  /**
   * Runs a Drive call, retrying rate limits and 5xx (TRIES in all, doubling the backoff).
   * A 404 is `onNotFound`'s to answer when given; otherwise the folder is gone.
   */
  private async call<T, U = never>(
    doing: string,
    fn: () => Promise<T>,
    onNotFound?: () => U,
  ): Promise<T | U> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (onNotFound && isGone(e)) return onNotFound();
        const err = this.failure(e, doing);
        if (!err.retryable || attempt >= TRIES || statusOf(e) === undefined) throw err;
        await sleep(this.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
      }
    }
  }

  /** A KinvaultError for a failed Drive call; never with a token or an upload URL. */
  private failure(e: unknown, doing: string): KinvaultError {
    if (e instanceof KinvaultError) return e;
    const status = statusOf(e);
    const reason = reasonOf(e);
    const at = `${this.label} (${doing})`;
    if (status === 401 || reason === 'invalid_grant' || reason === 'invalid_client') {
      // The next call reads the token file again: "target auth" may have renewed it.
      this.session = null;
      return new KinvaultError(
        'UNAUTHORIZED',
        `Google Drive refused Kinvault's access to ${at}: the authorisation was revoked or has expired. Run "kinvaultd target auth NAME" again (NAME: this target's name).`,
        { cause: e, details: { ...needsAuthorisationDetails } },
      );
    }
    if (reason === 'storageQuotaExceeded')
      return new KinvaultError(
        'DISK_FULL',
        `The Google Drive of ${at} is full. Free space in the Drive (empty its trash) or buy more storage; nothing more was stored.`,
        { cause: e },
      );
    if (
      status === 429 ||
      status === 408 ||
      (status !== undefined && status >= 500) ||
      reason === 'userRateLimitExceeded' ||
      reason === 'rateLimitExceeded'
    )
      return new KinvaultError(
        'UNAVAILABLE',
        `Google Drive is busy or failing for ${at}: ${status} ${reason ?? ''}. It will be tried again.`,
        { cause: e, retryable: true, details: { status } },
      );
    if (status === 404) {
      this.session = null;
      return this.folderGone(e, doing);
    }
    if (status === undefined)
      return new KinvaultError(
        'UNAVAILABLE',
        `Google Drive could not be reached for ${at}: ${codeOf(e)}. Check the network; it will be tried again.`,
        { cause: e, retryable: true },
      );
    return new KinvaultError(
      'INTERNAL',
      `Google Drive refused a request for ${at}: ${status} ${reason ?? ''} ${driveMessage(e)}.`,
      { cause: e, details: { status } },
    );
  }

  private folderGone(cause?: unknown, doing = 'opening the folder'): KinvaultError {
    return new KinvaultError(
      'FAILED_PRECONDITION',
      `The folder ${this.options.folder} of ${this.label} was not found in the Drive (${doing}), though it was just there or just created: was it deleted again, or is the Drive failing? It will be looked for (or created) again on the next try.`,
      { cause, retryable: false, details: { status: 404, [FOLDER_GONE]: true } },
    );
  }

  /** The body's own failure (its file went away): not the Drive's. */
  private sourceFailure(e: unknown, key: string): KinvaultError {
    if (e instanceof KinvaultError) return e;
    return new KinvaultError(
      'UNAVAILABLE',
      `Reading the bytes to store as ${key} at ${this.label} failed (${(e as Error).message}); nothing was stored.`,
      { cause: e, retryable: true },
    );
  }

  private sessionExpired(doing: string): KinvaultError {
    return new KinvaultError(
      'UNAVAILABLE',
      `Google Drive ended the upload session for ${this.label} (${doing}); it will be tried again.`,
      { retryable: true, details: { upload: 'ended' } },
    );
  }

  private missingToken(file: string): KinvaultError {
    return new KinvaultError(
      'UNAUTHORIZED',
      `${file} holds no Google Drive authorisation for ${this.label}. Run "kinvaultd target auth NAME" (NAME: this target's name).`,
      { details: { ...needsAuthorisationDetails } },
    );
  }

  private notFound(key: string): KinvaultError {
    return new KinvaultError('NOT_FOUND', `${key} is not at ${this.label}.`, { details: { key } });
  }
}

const FOLDER_GONE = 'folderGone';

/** The error of a Drive call that answered 404 for the folder (see `failure`). */
function isFolderGone(e: unknown): boolean {
  return e instanceof KinvaultError && e.details?.[FOLDER_GONE] === true;
}

function info(key: string, f: DriveFile): ObjectInfo {
  return {
    key,
    size: Number(f.size ?? 0),
    // Drive's own checksum of the content first: ours in appProperties would not change
    // if the bytes were replaced behind our back.
    sha256: f.sha256Checksum ?? f.appProperties?.['sha256'] ?? null,
  };
}

function uploadAnswer(res: {
  status: number;
  data: DriveFile;
  headers: Headers;
}): { file: DriveFile } | { received: number } {
  if (res.status !== 308) return { file: res.data };
  const m = /^bytes=0-(\d+)$/.exec(res.headers.get('range') ?? '');
  return { received: m ? Number(m[1]) + 1 : 0 };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function readJsonFile(path: string, what: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new KinvaultError(
      'FAILED_PRECONDITION',
      `The Google Drive ${what} file ${path} could not be read (${(e as NodeJS.ErrnoException).code ?? 'not JSON'}). ${
        what === 'token'
          ? 'Run "kinvaultd target auth NAME" to write it again.'
          : 'Download it again from Google Cloud (APIs & Services → Credentials → your OAuth client → Download JSON), put it there, readable by kinvaultd (docs/google-drive.md).'
      }`,
    );
  }
  if (!isRecord(value))
    throw new KinvaultError('FAILED_PRECONDITION', `${path} is not a JSON object.`);
  return value;
}

/**
 * Authorised clients by client file and refresh token: the access token one holds (an
 * hour) serves every store of that target in this process, rather than a token refresh
 * for each store (the coordinator opens one per job). A new token file is a new key.
 */
const sharedClients = new Map<string, Auth.OAuth2Client>();
const SHARED_CLIENTS = 16;

function sharedClient(
  google: Sdk['google'],
  credentialsFile: string,
  file: Record<string, unknown>,
  refreshToken: string,
): Auth.OAuth2Client {
  const key = createHash('sha256')
    .update(JSON.stringify([credentialsFile, file, refreshToken]))
    .digest('hex');
  let auth = sharedClients.get(key);
  if (!auth) {
    auth = oauthClient(google, credentialsFile, file);
    auth.setCredentials({ refresh_token: refreshToken });
    if (sharedClients.size >= SHARED_CLIENTS) sharedClients.clear();
    sharedClients.set(key, auth);
  }
  return auth;
}

/** The OAuth client of a credentials file (Google Cloud's "Download JSON" of a Desktop app). */
function oauthClient(
  google: Sdk['google'],
  credentialsFile: string,
  file: Record<string, unknown>,
): Auth.OAuth2Client {
  const c = file['installed'] ?? file['web'];
  if (!isRecord(c) || typeof c['client_id'] !== 'string' || typeof c['client_secret'] !== 'string')
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${credentialsFile} is not an OAuth client file: download it again from Google Cloud (APIs & Services → Credentials → OAuth client → Download JSON).`,
    );
  const endpoint = (key: string) => (typeof c[key] === 'string' ? c[key] : undefined);
  const tokenUri = endpoint('token_uri');
  const authUri = endpoint('auth_uri');
  return new google.auth.OAuth2({
    clientId: c['client_id'],
    clientSecret: c['client_secret'],
    endpoints: {
      ...(tokenUri ? { oauth2TokenUrl: tokenUri } : {}),
      ...(authUri ? { oauth2AuthBaseUrl: authUri } : {}),
    },
  });
}

const DRIVE_FILE_SCOPE = 'https://www.googleapis.com/auth/drive.file';

/** The two steps of an OAuth authorisation-code flow with PKCE (see authorize.ts). */
export interface DriveConsent {
  /** The consent page's address: drive.file, offline access, consent asked again. */
  consentUrl(p: { redirectUri: string; state: string; codeChallenge: string }): string;
  /** Exchanges a code at the client's token_uri; the refresh token (never logged). */
  exchange(p: { code: string; codeVerifier: string; redirectUri: string }): Promise<string>;
}

/** The consent steps for the OAuth client in `credentialsFile`. */
export async function driveConsent(credentialsFile: string): Promise<DriveConsent> {
  const { google, Auth: AuthModule } = await loadSdk();
  const file = await readJsonFile(credentialsFile, 'OAuth client (credentials)');
  const client = oauthClient(google, credentialsFile, file);
  return {
    consentUrl: (p) =>
      client.generateAuthUrl({
        access_type: 'offline',
        prompt: 'consent',
        scope: [DRIVE_FILE_SCOPE],
        redirect_uri: p.redirectUri,
        state: p.state,
        code_challenge: p.codeChallenge,
        code_challenge_method: AuthModule.CodeChallengeMethod.S256,
      }),
    async exchange(p) {
      let tokens: Auth.Credentials;
      try {
        ({ tokens } = await client.getToken({
          code: p.code,
          codeVerifier: p.codeVerifier,
          redirect_uri: p.redirectUri,
        }));
      } catch (e) {
        throw exchangeFailure(e);
      }
      if (!tokens.refresh_token)
        throw new KinvaultError(
          'FAILED_PRECONDITION',
          'Google gave no refresh token, so Kinvault could not keep its access. Remove Kinvault at https://myaccount.google.com/connections and run "kinvaultd target auth NAME" again.',
        );
      return tokens.refresh_token;
    },
  };
}

/** A refused code exchange, with Google's reason but never the code or a token. */
function exchangeFailure(e: unknown): KinvaultError {
  const status = statusOf(e);
  if (status === undefined || status >= 500)
    return new KinvaultError(
      'UNAVAILABLE',
      `Google's token endpoint could not be reached or failed (${status ?? codeOf(e)}). Check the network and run "kinvaultd target auth NAME" again.`,
      { cause: e, retryable: true },
    );
  const data = (e as GaxiosError).response?.data as Record<string, unknown> | undefined;
  const said = [data?.['error'], data?.['error_description']]
    .filter((v): v is string => typeof v === 'string')
    .join(': ')
    .slice(0, 200);
  const reason = reasonOf(e);
  return new KinvaultError(
    'UNAUTHORIZED',
    reason === 'invalid_client' || reason === 'unauthorized_client'
      ? `Google refused the OAuth client (${said}): download its JSON again from Google Cloud (APIs & Services → Credentials) and put it where the target's credentials= says.`
      : `Google refused the authorisation (${said || status}): the code was used already or has expired. Run "kinvaultd target auth NAME" again and finish within a few minutes.`,
    { cause: e },
  );
}

const isGaxios = (e: unknown) => sdk !== undefined && e instanceof sdk.Common.GaxiosError;

/** A 404 or 410: for a session URI, the session expired or is gone. */
const isGone = (e: unknown) => statusOf(e) === 404 || statusOf(e) === 410;

/** The error `sessionExpired` makes. */
const isSessionEnd = (e: unknown) => e instanceof KinvaultError && e.details['upload'] === 'ended';

function statusOf(e: unknown): number | undefined {
  return isGaxios(e)
    ? ((e as GaxiosError).status ?? (e as GaxiosError).response?.status)
    : undefined;
}

function reasonOf(e: unknown): string | undefined {
  if (!isGaxios(e)) return undefined;
  const data = (e as GaxiosError).response?.data as
    { error?: string | { errors?: { reason?: string }[] } } | string | undefined;
  if (!isRecord(data)) return undefined;
  const err = data['error'];
  if (typeof err === 'string') return err; // OAuth: invalid_grant, invalid_client
  return isRecord(err) && Array.isArray(err['errors'])
    ? (err['errors'][0] as { reason?: string } | undefined)?.reason
    : undefined;
}

function driveMessage(e: unknown): string {
  const data = (e as GaxiosError).response?.data as { error?: { message?: string } } | undefined;
  return typeof data?.error?.message === 'string' ? data.error.message.slice(0, 200) : '';
}

function codeOf(e: unknown): string {
  const err = e as { code?: unknown; cause?: { code?: unknown } };
  return String(err.code ?? err.cause?.code ?? 'network error');
}
