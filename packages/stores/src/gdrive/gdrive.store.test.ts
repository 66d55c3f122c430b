/**
 * The Google Drive store against the Drive v3 test server (tests/support/drive-server),
 * through the real googleapis client. Compiled by tests/tsconfig.json, not the package's.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  deleteDriveFolder,
  driveFileNames,
  tokenAuth,
  trashDriveFolder,
} from '../../../../tests/support/drive-client.js';
import {
  CHUNK_UNIT,
  start,
  type DriveServer,
} from '../../../../tests/support/drive-server/index.js';
import { bytesBody, readAll, sha256Hex } from '../body.js';
import { memoryResume, storeConformance } from '../testing/conformance.js';
import { GDriveStore, type GDriveStoreOptions } from './gdrive.store.js';
import { parseDriveUrl } from './url.js';

interface Fixture {
  server: DriveServer;
  dir: string;
  store: GDriveStore;
}

async function fixture(
  options: Partial<GDriveStoreOptions> = {},
  serverOptions: { quotaBytes?: number; validTokens?: string[]; refreshTokens?: string[] } = {},
  token = 'test-access-token',
): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'kv-gdrive-'));
  const server = await start({ dir, ...serverOptions });
  const store = new GDriveStore({ ...storeOptions(server, token), ...options });
  return { server, dir, store };
}

function storeOptions(server: DriveServer, token = 'test-access-token'): GDriveStoreOptions {
  return {
    folder: 'Kinvault Backup',
    auth: tokenAuth(token),
    rootUrl: server.rootUrl,
    chunkBytes: CHUNK_UNIT,
    backoffMs: 1,
  };
}

async function cleanup(f: Fixture): Promise<void> {
  await f.server.stop();
  await rm(f.dir, { recursive: true, force: true });
}

const conformance = (options: Partial<GDriveStoreOptions>) => async () => {
  const f = await fixture(options);
  return {
    store: f.store,
    cleanup: () => cleanup(f),
    reopen: () => new GDriveStore({ ...storeOptions(f.server), ...options }),
    received: () => f.server.bytesReceived['upload.resumable.chunk'] ?? 0,
  };
};

storeConformance('gdrive (multipart up to 5 MiB)', conformance({}));
storeConformance('gdrive (resumable only)', conformance({ multipartMaxBytes: -1 }));

/** A body's bytes up to `upTo`, then a failure, as a source that went away. */
async function* brokenAfter(bytes: Uint8Array, upTo: number): AsyncGenerator<Uint8Array> {
  yield bytes.subarray(0, upTo);
  throw new Error('the source went away');
}

/** The files the server holds (duplicates included). */
const driveFiles = (f: Fixture) => driveFileNames(f.server.rootUrl);

describe('gdrive store', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    if (f) await cleanup(f);
    f = undefined;
  });

  it('resumes a chunk cut mid-way from the Range the server reports, re-sending no more than the cut', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(3 * CHUNK_UNIT + 1234);
    f.server.cutNextChunkAfter(100_000);
    await f.store.put('packs/ab/big', bytesBody(bytes));
    expect((await readAll(f.store, 'packs/ab/big')).equals(bytes)).toBe(true);
    expect(f.server.requests['upload.resumable.status']).toBe(1);
    // The cut request's bytes past 100,000 are all the server got twice (less than a
    // socket read); re-sending the chunk from its start would add 100,000 more.
    const resent = f.server.bytesReceived['upload.resumable.chunk']! - bytes.length;
    expect(resent).toBeGreaterThanOrEqual(0);
    expect(resent).toBeLessThan(100_000);
    expect(await driveFiles(f)).toEqual(['packs~ab~big']);
  });

  it('resumes in a new instance from the saved session: one status query, then only what Drive lacks', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(4 * CHUNK_UNIT + 99);
    const resume = memoryResume();
    const cut = { ...bytesBody(bytes), open: () => brokenAfter(bytes, 2 * CHUNK_UNIT + 5) };
    await expect(f.store.put('packs/ab/big', cut, { resume })).rejects.toMatchObject({
      retryable: true,
    });
    expect(resume.state).toContain('upload_id=');
    expect(f.server.bytesReceived['upload.resumable.chunk']).toBe(2 * CHUNK_UNIT);
    const again = new GDriveStore({ ...storeOptions(f.server), multipartMaxBytes: 0 });
    await again.put('packs/ab/big', bytesBody(bytes), { resume });
    expect(f.server.requests['upload.resumable.start']).toBe(1);
    expect(f.server.requests['upload.resumable.status']).toBe(1);
    expect(f.server.bytesReceived['upload.resumable.chunk']).toBe(bytes.length);
    expect(resume.state).toBeNull();
    expect((await readAll(again, 'packs/ab/big')).equals(bytes)).toBe(true);
    expect(await driveFiles(f)).toEqual(['packs~ab~big']);
  });

  it('starts afresh when the saved session is gone, or is not one of this Drive', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(3 * CHUNK_UNIT);
    const resume = memoryResume();
    const cut = { ...bytesBody(bytes), open: () => brokenAfter(bytes, 2 * CHUNK_UNIT) };
    await expect(f.store.put('packs/cd/x', cut, { resume })).rejects.toThrow();
    // Gone (as expired ones are: Drive answers 404): a new session.
    const saved = JSON.parse(resume.state!) as { uri: string };
    saved.uri = saved.uri.replace(/upload_id=[^&]+/, 'upload_id=gone');
    resume.state = JSON.stringify(saved);
    await f.store.put('packs/cd/x', bytesBody(bytes), { resume });
    expect(f.server.requests['upload.resumable.status']).toBe(1);
    expect(f.server.requests['upload.resumable.start']).toBe(2);
    expect((await readAll(f.store, 'packs/cd/x')).equals(bytes)).toBe(true);
    // A URI elsewhere is never asked (the request would carry the access token).
    resume.state = JSON.stringify({
      v: 1,
      uri: 'https://elsewhere.example/upload?upload_id=x',
      size: bytes.length,
      sha256: sha256Hex(bytes),
    });
    const status = f.server.requests['upload.resumable.status'] ?? 0;
    await f.store.put('packs/cd/y', bytesBody(bytes), { resume });
    expect(f.server.requests['upload.resumable.status'] ?? 0).toBe(status);
    expect(await driveFiles(f)).toEqual(['packs~cd~x', 'packs~cd~y']);
  });

  it('takes the file of a saved session that had finished, sending nothing again', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(2 * CHUNK_UNIT + 7);
    const resume = memoryResume();
    let clears = 0;
    // The put is cut off right after Drive made the file, before it could clear the state.
    const failingOnce = {
      ...resume,
      load: () => resume.load(),
      save: (state: string) => resume.save(state),
      clear: async () => {
        if (clears++ === 0) throw new Error('the database went away');
        await resume.clear();
      },
    };
    await expect(
      f.store.put('packs/ef/x', bytesBody(bytes), { resume: failingOnce }),
    ).rejects.toThrow('the database went away');
    const sent = f.server.bytesReceived['upload.resumable.chunk'];
    await f.store.put('packs/ef/x', bytesBody(bytes), { resume: failingOnce });
    expect(f.server.bytesReceived['upload.resumable.chunk']).toBe(sent);
    expect(f.server.requests['upload.resumable.start']).toBe(1);
    expect(resume.state).toBeNull();
    expect(await driveFiles(f)).toEqual(['packs~ef~x']);
  });

  it('keeps the session URI out of every error, and drops the state when the upload cannot go on', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(3 * CHUNK_UNIT);
    const resume = memoryResume();
    f.server.fail('upload.resumable.chunk', 1, 503);
    f.server.fail('upload.resumable.status', 3, 503);
    const err = await f.store
      .put('packs/ab/x', bytesBody(bytes), { resume })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    const id = new URL(JSON.parse(resume.state!).uri as string).searchParams.get('upload_id')!;
    const seen = (e: unknown): string =>
      e instanceof Error ? `${e.message} ${JSON.stringify(e)} ${seen(e.cause)}` : String(e);
    expect(seen(err)).not.toContain(id);
    // A body whose bytes are not what it declares: given up, the state cleared.
    const bad = await f.store
      .put('packs/ab/x', bytesBody(bytes, sha256Hex(randomBytes(1))), { resume })
      .catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(resume.state).toBeNull();
    expect(await driveFiles(f)).toEqual([]);
  });

  it('goes on after a chunk answered 503 or 429, from the status query', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(2 * CHUNK_UNIT + 10);
    f.server.fail('upload.resumable.chunk', 1, 503);
    f.server.fail('upload.resumable.status', 1, 429);
    await f.store.put('packs/cd/x', bytesBody(bytes));
    expect((await readAll(f.store, 'packs/cd/x')).equals(bytes)).toBe(true);
    expect(f.server.requests['upload.resumable.status']).toBe(2);
  });

  it('turns a body that fails mid-upload into a retryable UNAVAILABLE, creating nothing', async () => {
    f = await fixture({ multipartMaxBytes: 0 });
    const bytes = randomBytes(3 * CHUNK_UNIT);
    const broken = {
      ...bytesBody(bytes),
      async *open() {
        yield bytes.subarray(0, 2 * CHUNK_UNIT);
        throw new Error('the disk went away');
      },
    };
    await expect(f.store.put('packs/ef/x', broken)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
      message: expect.stringContaining('the disk went away'),
    });
    expect(await driveFiles(f)).toEqual([]);
  });

  it('says the Drive is full (DISK_FULL, not retryable) when the quota is exceeded', async () => {
    f = await fixture({ multipartMaxBytes: 100_000 }, { quotaBytes: 1_000_000 });
    await f.store.put('a', bytesBody(randomBytes(950_000)));
    for (const size of [80_000, 200_000]) {
      // multipart, then resumable
      const put = f.store.put(`b${size}`, bytesBody(randomBytes(size)));
      await expect(put).rejects.toMatchObject({
        code: 'DISK_FULL',
        retryable: false,
        message: expect.stringMatching(/Google Drive of gdrive:\/\/Kinvault%20Backup .* is full/),
      });
    }
    expect(await f.store.usage()).toEqual({ usedBytes: 950_000, quotaBytes: 1_000_000 });
    expect(await driveFiles(f)).toEqual(['a']);
  });

  it('retries 403 and 429 rate limits with a backoff, three tries in all', async () => {
    f = await fixture();
    await f.store.put('x', bytesBody(randomBytes(10)));
    const listed = () => f!.server.requests['files.list'] ?? 0;
    let before = listed();
    f.server.fail('files.list', 2, 'userRateLimitExceeded');
    expect(await f.store.head('x')).toMatchObject({ size: 10 });
    expect(listed() - before).toBe(3);
    f.server.fail('upload.multipart', 1, 429);
    f.server.fail('files.delete', 1, 'rateLimitExceeded');
    await f.store.put('y', bytesBody(randomBytes(10)));
    await f.store.delete('y');
    expect(f.server.requests['upload.multipart']).toBe(3);
    before = listed();
    f.server.fail('files.list', 3, 429);
    await expect(f.store.head('x')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
    });
    expect(listed() - before).toBe(3);
  });

  it('replaces an object: one file afterwards, with the new bytes and SHA-256', async () => {
    f = await fixture();
    const first = randomBytes(1000);
    const second = randomBytes(2000);
    await f.store.put('keys/passphrase', bytesBody(first));
    const info = await f.store.put('keys/passphrase', bytesBody(second));
    expect(await driveFiles(f)).toEqual(['keys~passphrase']);
    expect((await readAll(f.store, 'keys/passphrase')).equals(second)).toBe(true);
    expect(await f.store.head('keys/passphrase')).toEqual(info);
  });

  it('finds or creates the folder again when it was deleted behind its back, and goes on', async () => {
    f = await fixture({ multipartMaxBytes: 100_000 });
    await f.store.put('keys/passphrase', bytesBody(randomBytes(10)));
    const folders = () => f!.server.requests['files.create'] ?? 0;
    expect(folders()).toBe(1);
    for (const [i, size] of [10, 3 * CHUNK_UNIT].entries()) {
      // multipart, then resumable: each put finds the cached folder id gone (404)
      await deleteDriveFolder(f.server.rootUrl, 'Kinvault Backup');
      const bytes = randomBytes(size);
      await f.store.put(`packs/ab/${i}`, bytesBody(bytes));
      expect((await readAll(f.store, `packs/ab/${i}`)).equals(bytes)).toBe(true);
      expect(await driveFiles(f)).toEqual([`packs~ab~${i}`]);
      expect(folders()).toBe(2 + i);
    }
    // Reads in a folder deleted meanwhile find nothing, without an error.
    await deleteDriveFolder(f.server.rootUrl, 'Kinvault Backup');
    expect(await f.store.head('packs/ab/1')).toBeNull();
    await deleteDriveFolder(f.server.rootUrl, 'Kinvault Backup');
    expect((await f.store.list('')).objects).toEqual([]);
    await deleteDriveFolder(f.server.rootUrl, 'Kinvault Backup');
    await expect(f.store.get('packs/ab/1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await f.store.delete('packs/ab/1');
  });

  it('does not use a folder moved to the trash: the next store makes a new one', async () => {
    f = await fixture();
    await f.store.put('keys/passphrase', bytesBody(randomBytes(10)));
    await trashDriveFolder(f.server.rootUrl, 'Kinvault Backup');
    const next = new GDriveStore({
      folder: 'Kinvault Backup',
      auth: tokenAuth('test-access-token'),
      rootUrl: f.server.rootUrl,
    });
    expect(await next.head('keys/passphrase')).toBeNull();
    await next.put('keys/passphrase', bytesBody(Buffer.from('again')));
    expect((await readAll(next, 'keys/passphrase')).toString()).toBe('again');
    expect(f.server.requests['files.create']).toBe(2);
  });

  it('refuses an access the Drive no longer grants (UNAUTHORIZED), never echoing the token', async () => {
    f = await fixture({}, { validTokens: ['good'] }, 'ya29.secret-token');
    const err = await f.store.head('x').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringContaining('kinvaultd target auth NAME'),
    });
    expect((err as Error).message).not.toContain('secret');
  });
});

describe('gdrive store from its URL files', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    if (f) await cleanup(f);
    f = undefined;
  });

  async function fromFiles(refreshToken: string) {
    f = await fixture({}, { refreshTokens: ['refresh-ok'], validTokens: [] });
    const credentials = join(f.dir, 'client.json');
    const token = join(f.dir, 'token.json');
    await writeFile(
      credentials,
      JSON.stringify({
        installed: { client_id: 'id', client_secret: 's', token_uri: `${f.server.rootUrl}token` },
      }),
    );
    await writeFile(token, JSON.stringify({ refresh_token: refreshToken }), { mode: 0o600 });
    const target = parseDriveUrl(
      `gdrive://Family%20Photos?credentials=${credentials}&token=${token}`,
    );
    const store = Object.assign(
      new GDriveStore({ ...target, rootUrl: f.server.rootUrl, backoffMs: 1 }),
      { target },
    );
    return { store, token };
  }

  it('reads the OAuth client and refresh token, and refuses a token file others can read', async () => {
    const { store, token } = await fromFiles('refresh-ok');
    await chmod(token, 0o644);
    await expect(store.head('x')).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringContaining(`chmod 600 ${token}`),
    });
    await chmod(token, 0o600);
    await store.put('x', bytesBody(Buffer.from('hello')));
    expect((await readAll(store, 'x')).toString()).toBe('hello');
    expect(f!.server.requests['oauth.token']).toBe(1);
    // Another store of the same target (the coordinator opens one per job) uses the
    // access token already given; a new token file (target auth) is used at once.
    const again = new GDriveStore({ ...store.target, rootUrl: f!.server.rootUrl });
    expect(await again.head('x')).toMatchObject({ size: 5 });
    expect(f!.server.requests['oauth.token']).toBe(1);
    f!.server.refreshTokens!.add('refresh-new');
    await writeFile(token, JSON.stringify({ refresh_token: 'refresh-new' }), { mode: 0o600 });
    const renewed = new GDriveStore({ ...store.target, rootUrl: f!.server.rootUrl });
    expect(await renewed.head('x')).toMatchObject({ size: 5 });
    expect(f!.server.requests['oauth.token']).toBe(2);
  });

  it('a store that was refused reads the token file again: a new authorisation works at once', async () => {
    const { store, token } = await fromFiles('refresh-ok');
    await store.put('x', bytesBody(Buffer.from('hello')));
    // The user revokes Kinvault's access in their Google account.
    f!.server.refreshTokens!.delete('refresh-ok');
    f!.server.validTokens!.clear();
    await expect(store.head('x')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    // "kinvaultd target auth" writes a new token file; the same store (the coordinator
    // keeps one per target) uses it on its next call.
    f!.server.refreshTokens!.add('refresh-new');
    await writeFile(token, JSON.stringify({ refresh_token: 'refresh-new' }), { mode: 0o600 });
    expect(await store.head('x')).toMatchObject({ size: 5 });
  });

  it('names a missing OAuth client file before a missing token (no authorisation can be given without it)', async () => {
    const { store, token } = await fromFiles('refresh-ok');
    await rm(token);
    const missing = new GDriveStore({
      ...store.target,
      credentialsFile: join(f!.dir, 'no-client.json'),
      rootUrl: f!.server.rootUrl,
    });
    await expect(missing.head('x')).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringContaining('Download it again from Google Cloud'),
    });
    await expect(store.head('x')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('says to authorise again when the refresh token was revoked (invalid_grant)', async () => {
    const { store } = await fromFiles('refresh-revoked');
    const err = await store.head('x').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringContaining('kinvaultd target auth NAME'),
    });
    expect((err as Error).message).not.toContain('refresh-revoked');
  });
});

describe('parseDriveUrl', () => {
  it('reads the folder and both files', () => {
    expect(
      parseDriveUrl('gdrive://Family%20Photos?credentials=/etc/kv/c.json&token=/etc/kv/t'),
    ).toEqual({
      folder: 'Family Photos',
      credentialsFile: '/etc/kv/c.json',
      tokenFile: '/etc/kv/t',
    });
    expect(
      parseDriveUrl('gdrive://Kv?credentials=/c&token=/t&api=http://127.0.0.1:4000/drive').rootUrl,
    ).toBe('http://127.0.0.1:4000/drive/');
    expect(parseDriveUrl('gdrive://Kv?credentials=/c&token=/t&chunkSize=1MiB').chunkBytes).toBe(
      1024 * 1024,
    );
  });

  it('refuses what is not one folder with both files, saying what a target looks like', () => {
    const cases: [string, RegExp][] = [
      ['gdrive://Kv?token=/t', /credentials file is missing/],
      ['gdrive://Kv?credentials=/c', /token file is missing/],
      ['gdrive://Kv?credentials=c.json&token=/t', /absolute path/],
      ['gdrive://Kv/sub?credentials=/c&token=/t', /not a path/],
      ['gdrive://?credentials=/c&token=/t', /folder name is missing/],
      ['gdrive://Kv?credentials=/c&token=/t&tokn=/x', /Unknown parameter tokn/],
      ['gdrive://u:p@Kv?credentials=/c&token=/t', /no user, password or port/],
      ['gdrive://My Backups?credentials=/c&token=/t', /%20/],
      ['gdrive://Kv?credentials=/c&token=/t&api=http://example.com/', /api parameter/],
      ['gdrive://Kv?credentials=/c&token=/t&api=https://u:p@example.com/', /api parameter/],
      ['gdrive://Kv?credentials=/c&token=/t&api=nonsense', /api parameter/],
      ['gdrive://Kv?credentials=/c&token=/t&chunkSize=100KiB', /chunkSize parameter/],
      ['gdrive://Kv?credentials=/c&token=/t&chunkSize=8MB', /chunkSize parameter/],
    ];
    for (const [url, message] of cases) {
      expect(() => parseDriveUrl(url)).toThrow(message);
      expect(() => parseDriveUrl(url)).toThrow(/gdrive:\/\/FolderName\?credentials=/);
    }
  });
});
