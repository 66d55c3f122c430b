/**
 * The Drive v3 test server (tests/support/drive-server), driven by the real googleapis client.
 * Uploads need `rootUrl` per call: googleapis rewrites a global rootUrl for API calls only,
 * and builds the upload (media) URL from the per-call options.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Common, google, type drive_v3 } from 'googleapis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHUNK_UNIT, start, type DriveServer } from './support/drive-server/index.js';

const FOLDER = 'application/vnd.google-apps.folder';
const dirs: string[] = [];
let server: DriveServer;
let dir: string;

function client(srv: DriveServer, token = 'test-access-token') {
  const auth = new google.auth.OAuth2();
  auth.setCredentials({ access_token: token });
  return { auth, drive: google.drive({ version: 'v3', auth, rootUrl: srv.rootUrl }) };
}

async function failure(
  p: Promise<unknown>,
): Promise<{ status?: number; reason?: string; message?: string }> {
  try {
    await p;
  } catch (err) {
    // googleapis throws a GaxiosError: `status`, and Google's error JSON in response.data.
    const e = err as Common.GaxiosError<{
      error?: { errors?: { reason?: string; message?: string }[] };
    }>;
    expect(e).toBeInstanceOf(Common.GaxiosError);
    const first = e.response?.data?.error?.errors?.[0];
    return { status: e.status, reason: first?.reason, message: first?.message };
  }
  throw new Error('expected a failure');
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drive-server-'));
  dirs.push(dir);
  server = await start({ dir });
});
afterEach(async () => server.stop());
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function folder(drive: drive_v3.Drive, name = 'Kinvault'): Promise<string> {
  const res = await drive.files.create({ requestBody: { name, mimeType: FOLDER }, fields: 'id' });
  return res.data.id!;
}

async function upload(drive: drive_v3.Drive, parent: string, name: string, bytes: Buffer) {
  const res = await drive.files.create(
    {
      requestBody: { name, parents: [parent], appProperties: { sha256: sha256(bytes) } },
      media: { mimeType: 'application/octet-stream', body: Readable.from([bytes]) },
      fields: 'id,name,size,md5Checksum,sha256Checksum,appProperties,parents',
    },
    { rootUrl: server.rootUrl },
  );
  return res.data;
}

describe('drive test server with googleapis', () => {
  it('creates a folder, uploads multipart with appProperties and reads the metadata back', async () => {
    const { drive } = client(server);
    const parent = await folder(drive);
    const bytes = randomBytes(300_000);
    const made = await upload(drive, parent, sha256(bytes), bytes);
    expect(made).toMatchObject({
      size: String(bytes.length),
      md5Checksum: md5(bytes),
      parents: [parent],
    });
    expect(server.requests['upload.multipart']).toBe(1);

    const got = await drive.files.get({
      fileId: made.id!,
      fields: 'id,name,size,sha256Checksum,md5Checksum,appProperties,createdTime',
    });
    expect(got.data).toMatchObject({
      name: sha256(bytes),
      sha256Checksum: sha256(bytes),
      appProperties: { sha256: sha256(bytes) },
    });
    expect(Object.keys(got.data).sort()).toEqual([
      'appProperties',
      'createdTime',
      'id',
      'md5Checksum',
      'name',
      'sha256Checksum',
      'size',
    ]);
    const plain = await drive.files.get({ fileId: made.id! });
    expect(plain.data).toEqual({
      kind: 'drive#file',
      id: made.id,
      name: sha256(bytes),
      mimeType: 'application/octet-stream',
    });
  });

  it('lists with the q subset and pages through 250 files', async () => {
    const { drive } = client(server);
    const parent = await folder(drive);
    const other = await folder(drive, 'Other');
    for (let i = 0; i < 250; i += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, j) =>
          drive.files.create({
            requestBody: {
              name: `pack-${i + j}`,
              parents: [parent],
              appProperties: { sha256: `h${i + j}` },
            },
          }),
        ),
      );
    }
    await drive.files.create({ requestBody: { name: "it's", parents: [other] } });
    const seen = new Set<string>();
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const res = await drive.files.list({
        q: `'${parent}' in parents and trashed = false`,
        pageSize: 100,
        pageToken,
        spaces: 'drive',
        fields:
          'nextPageToken, files(id,name,size,md5Checksum,sha256Checksum,appProperties,parents,createdTime)',
      });
      for (const f of res.data.files ?? []) seen.add(f.name!);
      pageToken = res.data.nextPageToken ?? undefined;
      pages++;
    } while (pageToken);
    expect([pages, seen.size]).toEqual([3, 250]);

    const byHash = await drive.files.list({
      q: `appProperties has { key='sha256' and value='h42' } and trashed = false`,
      fields: 'files(name)',
    });
    expect(byHash.data.files).toEqual([{ name: 'pack-42' }]);
    const quoted = await drive.files.list({
      q: `name = 'it\\'s' and mimeType != '${FOLDER}'`,
      fields: 'files(name,parents)',
    });
    expect(quoted.data.files).toEqual([{ name: "it's", parents: [other] }]);
    const folders = await drive.files.list({
      q: `mimeType = '${FOLDER}'`,
      orderBy: 'name desc',
      fields: 'files(name)',
    });
    expect(folders.data.files).toEqual([{ name: 'Other' }, { name: 'Kinvault' }]);

    expect(await failure(drive.files.list({ q: `name contains 'pack'` }))).toMatchObject({
      status: 400,
      reason: 'invalid',
    });
    expect(await failure(drive.files.list({ q: `name = 'unterminated` }))).toMatchObject({
      status: 400,
      reason: 'invalid',
    });
    expect(await failure(drive.files.list({ pageSize: 1001 }))).toMatchObject({
      status: 400,
      reason: 'invalid',
    });
  });

  it('serves media with Range (206, 416), deletes with 204 and answers 404 notFound afterwards', async () => {
    const { drive } = client(server);
    const bytes = randomBytes(100_000);
    const made = await upload(drive, await folder(drive), 'blob', bytes);
    const whole = await drive.files.get(
      { fileId: made.id!, alt: 'media' },
      { responseType: 'arraybuffer' },
    );
    expect(Buffer.from(whole.data as ArrayBuffer).equals(bytes)).toBe(true);
    const part = await drive.files.get(
      { fileId: made.id!, alt: 'media' },
      { responseType: 'arraybuffer', headers: { Range: 'bytes=1000-1999' } },
    );
    expect(part.status).toBe(206);
    expect((part.headers as unknown as Headers).get('content-range')).toBe(
      `bytes 1000-1999/${bytes.length}`,
    );
    expect(Buffer.from(part.data as ArrayBuffer).equals(bytes.subarray(1000, 2000))).toBe(true);
    const beyond = drive.files.get(
      { fileId: made.id!, alt: 'media' },
      { responseType: 'arraybuffer', headers: { Range: `bytes=${bytes.length}-` } },
    );
    expect((await failure(beyond)).status).toBe(416);

    const del = await drive.files.delete({ fileId: made.id! });
    expect(del.status).toBe(204);
    expect(await failure(drive.files.get({ fileId: made.id! }))).toEqual({
      status: 404,
      reason: 'notFound',
      message: `File not found: ${made.id}.`,
    });
    expect((await failure(drive.files.delete({ fileId: made.id! }))).status).toBe(404);
  });

  it('reports quota in about.get and refuses an upload over it with storageQuotaExceeded', async () => {
    await server.stop();
    server = await start({ dir, quotaBytes: 1_000_000 });
    const { drive } = client(server);
    const parent = await folder(drive);
    await upload(drive, parent, 'a', randomBytes(600_000));
    const about = await drive.about.get({ fields: 'storageQuota,user' });
    expect(about.data.storageQuota).toMatchObject({
      limit: '1000000',
      usage: '600000',
      usageInDrive: '600000',
    });
    expect(about.data.user?.emailAddress).toBeTruthy();
    expect((await failure(drive.about.get({}))).status).toBe(400);

    const over = await failure(upload(drive, parent, 'b', randomBytes(500_000)));
    expect(over).toEqual({
      status: 403,
      reason: 'storageQuotaExceeded',
      message: "The user's Drive storage quota has been exceeded.",
    });
    const { auth } = client(server);
    const resumable = auth.request({
      url: `${server.rootUrl}upload/drive/v3/files?uploadType=resumable`,
      method: 'POST',
      headers: { 'X-Upload-Content-Length': '500000' },
      data: { name: 'c' },
    });
    expect(await failure(resumable)).toMatchObject({ status: 403, reason: 'storageQuotaExceeded' });
    server.setQuota(2_000_000);
    await upload(drive, parent, 'b', randomBytes(500_000));
  });

  it('does a resumable upload by hand across a server restart', async () => {
    let { auth } = client(server);
    const bytes = randomBytes(2 * CHUNK_UNIT + 1234);
    const init = await auth.request({
      url: `${server.rootUrl}upload/drive/v3/files?uploadType=resumable&fields=id,size,sha256Checksum,appProperties`,
      method: 'POST',
      headers: {
        'X-Upload-Content-Length': String(bytes.length),
        'X-Upload-Content-Type': 'application/octet-stream',
      },
      data: { name: 'pack', appProperties: { sha256: sha256(bytes) } },
    });
    const session = init.headers.get('location')!;
    expect(session).toContain('upload_id=');
    const put = (a: number, b: number | null, body?: Buffer) =>
      auth.request({
        url: session,
        method: 'PUT',
        headers: {
          'Content-Range':
            b === null ? `bytes */${bytes.length}` : `bytes ${a}-${b}/${bytes.length}`,
        },
        data: body ?? Buffer.alloc(0),
        validateStatus: (s) => s === 200 || s === 308,
        retry: false,
      });
    const empty = await put(0, null);
    expect([empty.status, empty.headers.get('range')]).toEqual([308, null]);
    const first = await put(0, CHUNK_UNIT - 1, bytes.subarray(0, CHUNK_UNIT));
    expect([first.status, first.headers.get('range')]).toEqual([308, `bytes=0-${CHUNK_UNIT - 1}`]);

    const odd = put(CHUNK_UNIT, CHUNK_UNIT + 1000, bytes.subarray(CHUNK_UNIT, CHUNK_UNIT + 1001));
    expect(await failure(odd)).toMatchObject({ status: 400, reason: 'badRequest' });

    await put(CHUNK_UNIT, 2 * CHUNK_UNIT - 1, bytes.subarray(CHUNK_UNIT, 2 * CHUNK_UNIT));
    expect(server.requests).toMatchObject({
      'upload.resumable.chunk': 3,
      'upload.resumable.status': 1,
    });
    expect(server.bytesReceived['upload.resumable.chunk']).toBe(2 * CHUNK_UNIT); // the refused one unread
    await server.stop();
    server = await start({ dir });
    ({ auth } = client(server));
    const newSession = session.replace(/^http:\/\/127\.0\.0\.1:\d+\//, server.rootUrl);
    const status = await auth.request({
      url: newSession,
      method: 'PUT',
      headers: { 'Content-Range': `bytes */${bytes.length}` },
      validateStatus: (s) => s === 308,
    });
    expect(status.headers.get('range')).toBe(`bytes=0-${2 * CHUNK_UNIT - 1}`);
    const done = await auth.request<{
      id: string;
      size: string;
      sha256Checksum: string;
      appProperties: unknown;
    }>({
      url: newSession,
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${2 * CHUNK_UNIT}-${bytes.length - 1}/${bytes.length}` },
      data: bytes.subarray(2 * CHUNK_UNIT),
    });
    expect(done.data).toMatchObject({
      size: String(bytes.length),
      sha256Checksum: sha256(bytes),
      appProperties: { sha256: sha256(bytes) },
    });
    const media = await client(server).drive.files.get(
      { fileId: done.data.id, alt: 'media' },
      { responseType: 'arraybuffer' },
    );
    expect(Buffer.from(media.data as ArrayBuffer).equals(bytes)).toBe(true);
  });

  it('keeps the bytes of a cut chunk and expires sessions', async () => {
    const { auth } = client(server);
    const bytes = randomBytes(2 * CHUNK_UNIT);
    const init = await auth.request({
      url: `${server.rootUrl}upload/drive/v3/files?uploadType=resumable&fields=size,sha256Checksum`,
      method: 'POST',
      headers: { 'X-Upload-Content-Length': String(bytes.length) },
      data: { name: 'cut' },
    });
    const session = init.headers.get('location')!;
    server.cutNextChunkAfter(100_000);
    const cut = auth.request({
      url: session,
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${bytes.length - 1}/${bytes.length}` },
      data: bytes,
      retry: false,
    });
    await expect(cut).rejects.toThrow();
    const status = await auth.request({
      url: session,
      method: 'PUT',
      headers: { 'Content-Range': `bytes */${bytes.length}` },
      validateStatus: (s) => s === 308,
    });
    const kept = Number(/^bytes=0-(\d+)$/.exec(status.headers.get('range') ?? '')?.[1]) + 1;
    expect(kept).toBe(100_000);
    const resent = await auth.request<{ size: string; sha256Checksum: string }>({
      url: session,
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${bytes.length - 1}/${bytes.length}` },
      data: bytes,
    });
    expect(resent.data).toEqual({ size: String(bytes.length), sha256Checksum: sha256(bytes) });
    const gap = auth.request({
      url: `${server.rootUrl}upload/drive/v3/files?uploadType=resumable&fields=size,md5Checksum`,
      method: 'POST',
      data: { name: 'gap' },
    });
    const gapSession = (await gap).headers.get('location')!;
    const ahead = auth.request({
      url: gapSession,
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${CHUNK_UNIT}-${2 * CHUNK_UNIT - 1}/*` },
      data: bytes.subarray(0, CHUNK_UNIT),
      retry: false,
    });
    expect(await failure(ahead)).toMatchObject({ status: 400, reason: 'badRequest' });
    const empty = await auth.request<{ size: string; md5Checksum: string }>({
      url: gapSession,
      method: 'PUT',
      headers: { 'Content-Range': 'bytes */0' },
    });
    expect(empty.data).toEqual({ size: '0', md5Checksum: md5(Buffer.alloc(0)) });
    server.setSessionTtl(0);
    await new Promise((r) => setTimeout(r, 5));
    const expired = auth.request({
      url: session,
      method: 'PUT',
      headers: { 'Content-Range': `bytes */${bytes.length}` },
      retry: false,
    });
    expect((await failure(expired)).status).toBe(404);
  });

  it('surfaces injected rate limits and server errors as googleapis does', async () => {
    const { drive } = client(server);
    server.fail('files.list', 1, 429);
    await drive.files.list({});
    expect(server.requests['files.list']).toBe(2); // gaxios retries a GET after a 429
    server.fail('files.create', 1, 429);
    expect(await failure(drive.files.create({ requestBody: { name: 'x' } }))).toMatchObject({
      status: 429,
      reason: 'rateLimitExceeded',
    });
    server.fail('files.create', 1, 'userRateLimitExceeded');
    expect(await failure(drive.files.create({ requestBody: { name: 'x' } }))).toMatchObject({
      status: 403,
      reason: 'userRateLimitExceeded',
    });
    server.fail('files.create', 1, 503);
    expect(await failure(drive.files.create({ requestBody: { name: 'x' } }))).toMatchObject({
      status: 503,
      reason: 'backendError',
    });
    await drive.files.create({ requestBody: { name: 'x' } });
  });

  it('updates appProperties and trashed with files.update, and list follows', async () => {
    const { drive } = client(server);
    const parent = await folder(drive);
    const made = await upload(drive, parent, 'p', randomBytes(10));
    const res = await drive.files.update({
      fileId: made.id!,
      // Drive removes a property set to null; googleapis' types only allow strings.
      requestBody: {
        appProperties: { sha256: null, state: 'done' } as unknown as Record<string, string>,
        trashed: true,
      },
      fields: 'appProperties,trashed',
    });
    expect(res.data).toEqual({ appProperties: { state: 'done' }, trashed: true });
    const live = await drive.files.list({
      q: `'${parent}' in parents and trashed = false`,
      fields: 'files(id)',
    });
    expect(live.data.files).toEqual([]);
    const trashed = await drive.files.list({ q: `trashed = true`, fields: 'files(id)' });
    expect(trashed.data.files).toEqual([{ id: made.id }]);
    const readOnly = drive.files.update({ fileId: made.id!, requestBody: { size: '1' } });
    expect(await failure(readOnly)).toMatchObject({ status: 403, reason: 'fieldNotWritable' });
    const twoParents = drive.files.create({
      requestBody: { name: 'x', parents: [parent, 'root'] },
    });
    expect(await failure(twoParents)).toMatchObject({ status: 403, reason: 'cannotAddParent' });
  });

  it('shows that googleapis sends uploads to the per-call rootUrl, not the global one', async () => {
    const urls: string[] = [];
    const { auth } = client(server);
    const drive = google.drive({ version: 'v3', auth, rootUrl: server.rootUrl });
    const adapter = (options: { url: URL | string }) => {
      urls.push(String(options.url));
      return Promise.reject(new Error('captured'));
    };
    const media = () => ({
      mimeType: 'application/octet-stream',
      body: Readable.from([Buffer.from('x')]),
    });
    await expect(
      drive.files.create({ requestBody: { name: 'a' }, media: media() }, { adapter, retry: false }),
    ).rejects.toThrow();
    await expect(
      drive.files.create(
        { requestBody: { name: 'a' }, media: media() },
        { adapter, retry: false, rootUrl: server.rootUrl },
      ),
    ).rejects.toThrow();
    await expect(drive.files.list({}, { adapter, retry: false })).rejects.toThrow();
    expect(urls.map((u) => u.split('?')[0])).toEqual([
      'https://www.googleapis.com/upload/drive/v3/files',
      `${server.rootUrl}upload/drive/v3/files`,
      `${server.rootUrl}drive/v3/files`,
    ]);
  });

  it('requires a valid bearer token and refreshes one through POST /token', async () => {
    await server.stop();
    server = await start({ dir, validTokens: ['good'], refreshTokens: ['refresh-1'] });
    expect(await failure(client(server, 'bad').drive.files.list({}))).toMatchObject({
      status: 401,
      reason: 'authError',
    });
    await client(server, 'good').drive.files.list({});
    const anonymous = await fetch(`${server.rootUrl}drive/v3/files`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({
      error: {
        code: 401,
        status: 'UNAUTHENTICATED',
        errors: [{ reason: 'required', location: 'Authorization' }],
      },
    });
    const auth = new google.auth.OAuth2({
      clientId: 'id',
      clientSecret: 'secret',
      endpoints: { oauth2TokenUrl: `${server.rootUrl}token` },
    });
    auth.setCredentials({ refresh_token: 'refresh-1' });
    const drive = google.drive({ version: 'v3', auth, rootUrl: server.rootUrl });
    await drive.files.list({});
    expect(server.requests['oauth.token']).toBe(1);
    expect(server.validTokens?.size).toBe(2);
  });

  describe('OAuth consent page and authorization_code grant', () => {
    const redirectUri = 'http://127.0.0.1:5999/';
    const verifier = 'v'.repeat(20) + randomBytes(24).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');

    beforeEach(async () => {
      await server.stop();
      server = await start({ dir, clients: { 'id-1': 'secret-1' }, refreshTokens: [] });
    });

    /** The consent request as googleapis makes it; the code of the 302 it answers. */
    async function code(params: Record<string, string> = {}): Promise<string> {
      const url = new URL(`${server.rootUrl}auth`);
      for (const [k, v] of Object.entries({
        client_id: 'id-1',
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'https://www.googleapis.com/auth/drive.file',
        state: 's1',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...params,
      }))
        url.searchParams.set(k, v);
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(302);
      const back = new URL(res.headers.get('location')!);
      expect(back.origin + back.pathname).toBe(redirectUri);
      expect(back.searchParams.get('state')).toBe('s1');
      return back.searchParams.get('code')!;
    }

    const exchange = (form: Record<string, string>) =>
      fetch(`${server.rootUrl}token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          client_id: 'id-1',
          client_secret: 'secret-1',
          redirect_uri: redirectUri,
          code_verifier: verifier,
          ...form,
        }),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));

    it('exchanges a code once, with the verifier, through googleapis', async () => {
      const auth = new google.auth.OAuth2({
        clientId: 'id-1',
        clientSecret: 'secret-1',
        endpoints: { oauth2TokenUrl: `${server.rootUrl}token` },
      });
      const c = await code();
      const { tokens } = await auth.getToken({
        code: c,
        codeVerifier: verifier,
        redirect_uri: redirectUri,
      });
      expect(tokens).toMatchObject({
        token_type: 'Bearer',
        scope: 'https://www.googleapis.com/auth/drive.file',
      });
      expect(server.refreshTokens!.has(tokens.refresh_token!)).toBe(true);
      expect(await exchange({ code: c })).toEqual({
        status: 400,
        body: { error: 'invalid_grant', error_description: 'Bad Request' },
      });
    });

    it('refuses what Google refuses: a wrong or missing verifier, another redirect_uri, a wrong secret, an unknown code', async () => {
      const cases: [Record<string, string>, number, string, string][] = [
        [{ code_verifier: 'w'.repeat(64) }, 400, 'invalid_grant', 'Invalid code verifier.'],
        [{ code_verifier: '' }, 400, 'invalid_grant', 'Missing code verifier.'],
        [{ redirect_uri: 'http://127.0.0.1:6000/' }, 400, 'redirect_uri_mismatch', 'Bad Request'],
        [{ client_secret: 'nope' }, 401, 'invalid_client', 'Unauthorized'],
      ];
      for (const [form, status, error, description] of cases)
        expect(await exchange({ code: await code(), ...form }), JSON.stringify(form)).toEqual({
          status,
          body: { error, error_description: description },
        });
      expect((await exchange({ code: '4/0made-up' })).body).toMatchObject({
        error: 'invalid_grant',
        error_description: 'Malformed auth code.',
      });
      const plain = await code({ code_challenge: verifier, code_challenge_method: 'plain' });
      expect((await exchange({ code: plain })).status).toBe(200);
    });

    it('answers a refusal, and shows an error page (no redirect) for a bad request', async () => {
      server.denyNextConsent();
      const res = await fetch(
        `${server.rootUrl}auth?client_id=id-1&response_type=code&scope=x&state=s&redirect_uri=${encodeURIComponent(redirectUri)}`,
        { redirect: 'manual' },
      );
      const back = new URL(res.headers.get('location')!);
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('code')).toBeNull();
      for (const query of [
        'client_id=unknown&response_type=code&scope=x&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2F',
        'client_id=id-1&response_type=code&scope=x&redirect_uri=https%3A%2F%2Fevil.example%2F',
        'client_id=id-1&response_type=token&scope=x&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2F',
      ]) {
        const page = await fetch(`${server.rootUrl}auth?${query}`, { redirect: 'manual' });
        expect(page.status, query).toBeGreaterThanOrEqual(400);
        expect(page.headers.get('location')).toBeNull();
      }
    });
  });
});

describe('drive test server: held requests', () => {
  it('lets a held request go when its client closes its end (FIN), not only on a reset', async () => {
    server.stallNext('upload.multipart');
    const { port } = new URL(server.rootUrl);
    const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
    await once(socket, 'connect');
    // An upload cut off part-way: 100 of its 1,000 bytes sent.
    socket.write(
      'POST /upload/drive/v3/files?uploadType=multipart HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        'Authorization: Bearer test\r\nContent-Type: multipart/related; boundary=b\r\n' +
        `Content-Length: 1000\r\n\r\n${'x'.repeat(100)}`,
    );
    await expect.poll(() => server.stalled, { timeout: 5000 }).toBe(1);
    socket.end(); // as a killed process's kernel does when nothing was left unread
    await expect.poll(() => server.stalled, { timeout: 5000 }).toBe(0);
    socket.destroy();
  });
});
