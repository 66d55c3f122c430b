/**
 * End to end, attacking the agent → coordinator path: error bodies (tRPC, tus, pack
 * downloads) never carry stacks, server paths or library versions; tus uploads belong
 * to their device on every method and never leave files behind (finished, refused,
 * abandoned, expired, crashed); a full disk is said clearly on both sides. The built
 * kinvaultd with embedded PostgreSQL, over real HTTPS; a real tmpfs fills up.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnrollmentCode } from '@kinvault/protocol';
import {
  blobId,
  BlobType,
  buildPack,
  deriveKeys,
  sealBlob,
  systemRandom,
  toHex,
} from '@kinvault/format';
import { apiClient, type ApiClient } from '../apps/agent/src/transport/api.js';
import {
  fetchPinnedCertificate,
  tlsOptions,
  type Pin,
} from '../apps/agent/src/transport/pinning.js';
import { uploadPack } from '../apps/agent/src/transport/upload.js';
import {
  initCoordinator,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
  type Coordinator,
} from './support/kinvaultd.js';

const keys = deriveKeys(systemRandom(32));
const MiB = 1024 * 1024;

async function makePack(count: number, size = 50_000) {
  const blobs = Array.from({ length: count }, () => {
    const plaintext = systemRandom(size);
    const id = blobId(keys, BlobType.data, plaintext);
    return { type: BlobType.data, id, sealed: sealBlob(keys, BlobType.data, id, plaintext) };
  });
  const { bytes, info } = await buildPack(keys, blobs);
  return {
    bytes: Buffer.from(bytes),
    name: info.name,
    declaration: {
      name: info.name,
      size: info.size,
      blobs: info.entries.map((e) => ({ type: e.type as 1 | 2, id: toHex(e.id) })),
    },
  };
}

interface Device {
  api: ApiClient;
  token: string;
  pin: Pin;
}

async function enroll(c: Coordinator, name: string): Promise<Device> {
  const added = await runKinvaultd(['device', 'add', name, '--data-dir', c.dataDir, '--json']);
  const e = decodeEnrollmentCode((JSON.parse(added.stdout) as { code: string }).code);
  const pin = await fetchPinnedCertificate(e.url, e.fingerprint);
  const r = await apiClient({ url: e.url, pin }).enroll.mutate({ token: e.token });
  return { api: apiClient({ url: e.url, pin, token: r.deviceToken }), token: r.deviceToken, pin };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTPS request to the pinned coordinator. */
function raw(
  c: Coordinator,
  pin: Pin,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${c.url}${path}`, { ...tlsOptions(pin), method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const TUS = { 'tus-resumable': '1.0.0' };
const bearer = (d: Device) => ({ authorization: `Bearer ${d.token}` });

describe('coordinator hardening (built kinvaultd, raw HTTPS)', () => {
  let c: Coordinator;
  let anna: Device;
  let bob: Device;
  let uploads: string;
  let tmpfs: string | undefined;

  /** No stack, no server path, no library version in a body a client gets. */
  function expectClean(a: Answer): void {
    expect(a.body).not.toMatch(/stack/i);
    expect(a.body).not.toMatch(/node_modules|dist\/src|apps\/server|\/tmp\/|\/work\//);
    expect(a.body).not.toContain(c.dataDir);
    expect(a.body).not.toMatch(/\bat .+:\d+:\d+/); // a stack frame
    expect(a.body).not.toMatch(/\d+\.\d+\.\d+/); // a version (or an address)
  }

  /** Creates an upload for a declared pack and sends its first `sent` bytes. */
  async function startUpload(dev: Device, p: Awaited<ReturnType<typeof makePack>>, sent: number) {
    await dev.api.packs.declare.mutate(p.declaration);
    const created = await raw(c, dev.pin, 'POST', '/packs/uploads', {
      ...bearer(dev),
      ...TUS,
      'upload-length': String(p.bytes.length),
      'upload-metadata': `pack ${Buffer.from(p.name).toString('base64')}`,
    });
    expect(created.status).toBe(201);
    const location = String(created.headers.location);
    const id = location.split('/').pop()!;
    const patched = await raw(
      c,
      dev.pin,
      'PATCH',
      location,
      {
        ...bearer(dev),
        ...TUS,
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
      },
      p.bytes.subarray(0, sent),
    );
    expect(patched.status).toBe(204);
    return { id, location };
  }

  async function setConfig(change: Record<string, unknown>): Promise<void> {
    const path = join(c.dataDir, 'config.json');
    const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...config, ...change }, null, 2));
  }

  /** The coordinator's log lines that contain `text` (its log is written asynchronously). */
  async function logLines(text: string): Promise<string[]> {
    const find = () =>
      c
        .log()
        .split('\n')
        .filter((l) => l.includes(text));
    await waitFor(`"${text}" in the log`, async () => find().length > 0, 10_000);
    await new Promise((r) => setTimeout(r, 200)); // and any line just behind it
    return find();
  }

  async function waitFor(what: string, cond: () => Promise<boolean>, ms = 60_000) {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvaultd-hardening-');
    uploads = join(dataDir, 'uploads');
    c = await startCoordinator(dataDir, port);
    anna = await enroll(c, 'anna-laptop');
    bob = await enroll(c, 'bob-laptop');
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    if (tmpfs) execFileSync('umount', [tmpfs]);
    await removeTempDirs();
  });

  it('tRPC errors carry no stack, server path or version, even to unauthenticated clients', async () => {
    const unauthenticated = await raw(c, anna.pin, 'GET', '/trpc/household.get');
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.body).toMatch(/not enrolled or was revoked/);
    const malformedJson = await raw(
      c,
      anna.pin,
      'POST',
      '/trpc/blobs.have',
      { ...bearer(anna), 'content-type': 'application/json' },
      '{"ids": [',
    );
    expect(malformedJson.status).toBe(400);
    const badInput = await raw(
      c,
      anna.pin,
      'POST',
      '/trpc/blobs.have',
      { ...bearer(anna), 'content-type': 'application/json' },
      JSON.stringify({ ids: ['not-hex'] }),
    );
    expect(badInput.status).toBe(400);
    expect(badInput.body).toMatch(/64 lowercase hex/);
    const noSuchProcedure = await raw(c, anna.pin, 'GET', '/trpc/nothing.here', bearer(anna));
    expect(noSuchProcedure.status).toBe(404);
    const noSuchRoute = await raw(c, anna.pin, 'GET', '/nothing/here');
    expect(noSuchRoute.status).toBe(404);
    for (const a of [unauthenticated, malformedJson, badInput, noSuchProcedure, noSuchRoute])
      expectClean(a);
  });

  it('tus: only the device that created an upload can see, continue or delete it; unknown ids are 404', async () => {
    const p = await makePack(4);
    const { id, location } = await startUpload(anna, p, 1000);
    const patch = (dev: Device) =>
      raw(
        c,
        dev.pin,
        'PATCH',
        location,
        {
          ...bearer(dev),
          ...TUS,
          'upload-offset': '1000',
          'content-type': 'application/offset+octet-stream',
        },
        p.bytes.subarray(1000, 2000),
      );
    const answers: Answer[] = [];
    const as = async (a: Answer, status: number) => {
      answers.push(a);
      expect(a.status).toBe(status);
    };
    await as(await raw(c, bob.pin, 'HEAD', location, { ...bearer(bob), ...TUS }), 403);
    await as(await patch(bob), 403);
    await as(await raw(c, bob.pin, 'DELETE', location, { ...bearer(bob), ...TUS }), 403);
    await as(await raw(c, bob.pin, 'GET', location, bearer(bob)), 403);
    // Names of anna's files under another name: never reach the store.
    for (const name of [
      `${id}.json`,
      encodeURIComponent(`../${id}`),
      encodeURIComponent('../config.json'),
    ])
      await as(
        await raw(c, bob.pin, 'DELETE', `/packs/uploads/${name}`, { ...bearer(bob), ...TUS }),
        404,
      );
    await as(
      await raw(c, bob.pin, 'HEAD', `/packs/uploads/${'ab'.repeat(16)}`, {
        ...bearer(bob),
        ...TUS,
      }),
      404,
    );
    await as(
      await raw(c, bob.pin, 'DELETE', `/packs/uploads/${'ab'.repeat(16)}`, {
        ...bearer(bob),
        ...TUS,
      }),
      404,
    );
    await as(await raw(c, bob.pin, 'DELETE', location, TUS), 401);
    for (const a of answers) expectClean(a);
    expect((await readdir(uploads)).sort()).toEqual([id, `${id}.json`]);

    // anna's upload is untouched: she continues it, then deletes it.
    const head = await raw(c, anna.pin, 'HEAD', location, { ...bearer(anna), ...TUS });
    expect(head.status).toBe(200);
    expect(head.headers['upload-offset']).toBe('1000');
    expect((await patch(anna)).status).toBe(204);
    expect((await raw(c, anna.pin, 'DELETE', location, { ...bearer(anna), ...TUS })).status).toBe(
      204,
    );
    expect(await readdir(uploads)).toEqual([]);
    expect((await raw(c, anna.pin, 'HEAD', location, { ...bearer(anna), ...TUS })).status).toBe(
      404,
    );

    // The check does not depend on the data file: with only the sidecar left (as between
    // a finished upload's move into the pack store and the sidecar's removal), it holds.
    const other = await startUpload(anna, await makePack(2), 1000);
    await rm(join(uploads, other.id));
    for (const method of ['HEAD', 'DELETE']) {
      const a = await raw(c, bob.pin, method, other.location, { ...bearer(bob), ...TUS });
      expect(a.status).toBe(403);
      expectClean(a);
    }
    expect(await readdir(uploads)).toEqual([`${other.id}.json`]);
    expect(
      (await raw(c, anna.pin, 'DELETE', other.location, { ...bearer(anna), ...TUS })).status,
    ).toBe(204);
    expect(await readdir(uploads)).toEqual([]);
  });

  it('tus: finished and refused uploads leave nothing in the uploads directory', async () => {
    const conn = { url: c.url, pin: anna.pin, token: anna.token };
    const good = await makePack(3);
    await anna.api.packs.declare.mutate(good.declaration);
    await uploadPack({
      conn,
      name: good.name,
      data: good.bytes,
      size: good.bytes.length,
      retryDelays: [],
    });
    expect(await readdir(uploads)).toEqual([]);

    const wrong = await makePack(2);
    await anna.api.packs.declare.mutate(wrong.declaration);
    const flipped = Buffer.from(wrong.bytes);
    flipped[100]! ^= 1;
    await expect(
      uploadPack({ conn, name: wrong.name, data: flipped, size: flipped.length, retryDelays: [] }),
    ).rejects.toThrow(/HTTP 422.*SHA-256/);
    expect(await readdir(uploads)).toEqual([]);

    const undeclared = await makePack(1);
    await expect(
      uploadPack({
        conn,
        name: undeclared.name,
        data: undeclared.bytes,
        size: undeclared.bytes.length,
        retryDelays: [],
      }),
    ).rejects.toThrow(/HTTP 400.*not declared/);
    expect(await readdir(uploads)).toEqual([]);
  });

  it('tus: a file-system failure inside the coordinator is answered without its path, and logged with a reference', async () => {
    const p = await makePack(2);
    const { id, location } = await startUpload(anna, p, 1000);
    // The upload's data file becomes read-only underneath the coordinator.
    const file = join(uploads, id);
    execFileSync('mount', ['--bind', file, file]);
    let a: Answer;
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', file]);
      a = await raw(
        c,
        anna.pin,
        'PATCH',
        location,
        {
          ...bearer(anna),
          ...TUS,
          'upload-offset': '1000',
          'content-type': 'application/offset+octet-stream',
        },
        p.bytes.subarray(1000),
      );
    } finally {
      execFileSync('umount', [file]);
    }
    expect(a.status).toBe(500);
    expectClean(a);
    const ref = /reference ([0-9a-f]{8})/.exec(a.body)?.[1];
    expect(ref).toBeDefined();
    const logged = await logLines(`"ref":"${ref}"`);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/EROFS/);
    expect((await raw(c, anna.pin, 'DELETE', location, { ...bearer(anna), ...TUS })).status).toBe(
      204,
    );
  });

  it('tus: at start, expired uploads and what a crash left are removed', async () => {
    const old = await startUpload(anna, await makePack(2), 500);
    const fresh = await startUpload(anna, await makePack(2), 500);
    await c.stop('SIGTERM');
    // The old one was created two days ago (its sidecar says when); a crash left halves.
    const sidecar = join(uploads, `${old.id}.json`);
    const info = JSON.parse(await readFile(sidecar, 'utf8')) as { creation_date: string };
    info.creation_date = new Date(Date.now() - 48 * 3600_000).toISOString();
    await writeFile(sidecar, JSON.stringify(info));
    const lonelyData = randomBytes(16).toString('hex');
    const lonelySidecar = randomBytes(16).toString('hex');
    await writeFile(join(uploads, lonelyData), randomBytes(1000));
    await writeFile(join(uploads, `${lonelySidecar}.json`), JSON.stringify({ id: lonelySidecar }));
    c = await startCoordinator(c.dataDir, c.port);
    expect((await readdir(uploads)).sort()).toEqual([fresh.id, `${fresh.id}.json`].sort());
    expect(c.log()).toMatch(/"orphans":2,"expired":1.*removed abandoned uploads/);
    expect((await raw(c, anna.pin, 'HEAD', old.location, { ...bearer(anna), ...TUS })).status).toBe(
      404,
    );
    const head = await raw(c, anna.pin, 'HEAD', fresh.location, { ...bearer(anna), ...TUS });
    expect(head.status).toBe(200);
    expect(
      (await raw(c, anna.pin, 'DELETE', fresh.location, { ...bearer(anna), ...TUS })).status,
    ).toBe(204);
  }, 120_000);

  it('tus: incomplete uploads expire while the coordinator runs (uploadExpiryHours)', async () => {
    await c.stop('SIGTERM');
    await setConfig({ uploadExpiryHours: 0.002 }); // 7.2 s
    c = await startCoordinator(c.dataDir, c.port);
    try {
      const { location } = await startUpload(anna, await makePack(2), 500);
      expect((await readdir(uploads)).length).toBe(2);
      await waitFor('the upload to expire', async () => (await readdir(uploads)).length === 0);
      expect((await raw(c, anna.pin, 'HEAD', location, { ...bearer(anna), ...TUS })).status).toBe(
        404,
      );
      expect(await logLines('removed expired uploads')).toEqual([
        expect.stringContaining('"expired":1'),
      ]);
    } finally {
      await c.stop('SIGTERM');
      await setConfig({ uploadExpiryHours: 24 });
      c = await startCoordinator(c.dataDir, c.port);
    }
  }, 120_000);

  it('disk full: the agent gets HTTP 507 without a path and does not retry; the log says where and how much; nothing is left', async () => {
    await c.stop('SIGTERM');
    tmpfs = uploads;
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', uploads]);
    c = await startCoordinator(c.dataDir, c.port);
    const p = await makePack(240); // about 12 MiB
    expect(p.bytes.length).toBeGreaterThan(8 * MiB);
    await anna.api.packs.declare.mutate(p.declaration);
    // The agent's own retry schedule: a full disk must not be retried.
    const failed = await uploadPack({
      conn: { url: c.url, pin: anna.pin, token: anna.token },
      name: p.name,
      data: p.bytes,
      size: p.bytes.length,
    }).then(
      () => null,
      (e: Error & { retryable?: boolean }) => e,
    );
    expect(failed?.message).toMatch(
      new RegExp(
        `HTTP 507\\): The coordinator's disk is full: this upload needs ${(p.bytes.length / 1e6).toFixed(1)} MB and the NAS has \\d+\\.\\d MB free`,
      ),
    );
    expect(failed?.message).not.toContain(c.dataDir);
    expect(failed?.retryable).toBe(false);
    // One line per attempt: exactly one attempt was made.
    const diskFull = await logLines('disk full (ENOSPC)');
    expect(diskFull).toHaveLength(1);
    expect(diskFull[0]).toContain(`in ${uploads}: an upload needs ${p.bytes.length} bytes`);
    expect(diskFull[0]).toMatch(/"freeBytes":\d+/);
    expect(await readdir(uploads)).toEqual([]);
    // The space is free again (the partial upload is gone): uploads start again.
    const small = await makePack(1);
    const { location } = await startUpload(anna, small, 100);
    expect((await raw(c, anna.pin, 'DELETE', location, { ...bearer(anna), ...TUS })).status).toBe(
      204,
    );

    // A disk so full that not even an upload's sidecar fits: 507, and no 0-byte file.
    const filler = join(uploads, 'filler');
    await writeFile(filler, Buffer.alloc(8 * MiB)).catch(() => {});
    const refused = await raw(c, anna.pin, 'POST', '/packs/uploads', {
      ...bearer(anna),
      ...TUS,
      'upload-length': String(small.bytes.length),
      'upload-metadata': `pack ${Buffer.from(small.name).toString('base64')}`,
    });
    expect(await readdir(uploads)).toEqual(['filler']);
    expect(refused.status).toBe(507);
    expect(refused.body).toMatch(/^The coordinator's disk is full: this upload needs/);
    expectClean(refused);
    await rm(filler);

    await c.stop('SIGTERM');
    execFileSync('umount', [uploads]);
    tmpfs = undefined;
    c = await startCoordinator(c.dataDir, c.port);
  }, 120_000);

  it('internal failures (the database is gone) reach clients as a reference; the log has the details', async () => {
    const pid = Number(
      (await readFile(join(c.dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
    await waitFor('PostgreSQL to stop', async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    const answers = [
      await raw(c, anna.pin, 'GET', '/trpc/snapshots.list', bearer(anna)),
      await raw(c, anna.pin, 'POST', '/packs/uploads', {
        ...bearer(anna),
        ...TUS,
        'upload-length': '100',
        'upload-metadata': `pack ${Buffer.from('ab'.repeat(32)).toString('base64')}`,
      }),
      await raw(c, anna.pin, 'GET', `/packs/${'ab'.repeat(32)}`, bearer(anna)),
    ];
    for (const a of answers) {
      expect(a.status).toBe(500);
      expectClean(a);
      const ref = /reference ([0-9a-f]{8})/.exec(a.body)?.[1];
      expect(ref, a.body).toBeDefined();
      const logged = await logLines(`"ref":"${ref}"`);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(/"err":\{/);
    }
  }, 60_000);
});
