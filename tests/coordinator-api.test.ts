/**
 * End to end: the coordinator's API through the agent's own transport (tRPC over
 * pinned HTTPS, tus uploads), against the built kinvaultd with embedded PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { createServer, request } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnrollmentCode } from '@kinvault/protocol';
import {
  blobId,
  BlobType,
  buildPack,
  createKeyFile,
  deriveKeys,
  generateRecoveryCode,
  KeyFileKind,
  sealBlob,
  signKeyFileReplacement,
  sealSnapshot,
  systemRandom,
  toHex,
} from '@kinvault/format';
import { apiClient, type ApiClient } from '../apps/agent/src/transport/api.js';
import { appRouter } from '../apps/server/src/http/trpc/router.js';
import { createTls } from '../apps/server/src/tls.js';
import {
  fetchPinnedCertificate,
  tlsOptions,
  type Pin,
} from '../apps/agent/src/transport/pinning.js';
import { uploadPack } from '../apps/agent/src/transport/upload.js';
import { eventStream } from '../apps/agent/src/transport/events.js';
import {
  initCoordinator,
  runKinvaultd,
  startCoordinator,
  type Coordinator,
  removeTempDirs,
} from './support/kinvaultd.js';

const masterKey = systemRandom(32);
const keys = deriveKeys(masterKey);
const weak = { kdf: { opslimit: 1, memlimit: 8 * 1024 * 1024 }, allowWeakKdf: true };

async function makePack(count: number) {
  const blobs = Array.from({ length: count }, () => {
    const plaintext = systemRandom(50_000);
    const id = blobId(keys, BlobType.data, plaintext);
    return { type: BlobType.data, id, sealed: sealBlob(keys, BlobType.data, id, plaintext) };
  });
  const { bytes, info } = await buildPack(keys, blobs);
  return { bytes: Buffer.from(bytes), info, ids: blobs.map((b) => toHex(b.id)) };
}

function declaration(p: Awaited<ReturnType<typeof makePack>>) {
  return {
    name: p.info.name,
    size: p.info.size,
    blobs: p.info.entries.map((e) => ({ type: e.type as 1 | 2, id: toHex(e.id) })),
  };
}

/** Uploads pack bytes as a device (no retries: a refusal must surface at once). */
function upload(
  dev: { token: string; pin: Pin },
  url: string,
  name: string,
  data: Buffer,
): Promise<void> {
  return uploadPack({
    conn: { url, pin: dev.pin, token: dev.token },
    name,
    data,
    size: data.length,
    retryDelays: [],
  });
}

function get(
  url: string,
  pin: Pin,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tlsOptions(pin), headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * "STATUS REFUSED" for a procedure's answer: its HTTP status (for a subscription, which
 * plain HTTP gets as server-sent events, the status of an error that is the stream's only
 * event) and whether it says the device is not enrolled.
 */
function refusal(type: string, r: { status: number; body: Buffer }): string {
  const body = String(r.body);
  const refused = /not enrolled or was revoked/.test(body);
  if (type !== 'subscription') return `${r.status} ${refused}`;
  const events = [...body.matchAll(/^event: (.*)$/gm)].map((m) => m[1]);
  const error = /^event: serialized-error\ndata: (.*)$/m.exec(body);
  const status = error
    ? (JSON.parse(error[1]!) as { data: { httpStatus: number } }).data.httpStatus
    : 0;
  return events.join() === 'connected,serialized-error'
    ? `${status} ${refused}`
    : `${r.status} ${body}`;
}

/** A tRPC procedure called over plain HTTPS, as tRPC's HTTP link would call it. */
function callProcedure(
  url: string,
  pin: Pin,
  path: string,
  type: string,
  authorization: string | undefined,
): Promise<{ status: number; body: Buffer }> {
  const mutation = type === 'mutation';
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/trpc/${path}`,
      {
        ...tlsOptions(pin),
        method: mutation ? 'POST' : 'GET',
        headers: {
          ...(authorization ? { authorization } : {}),
          ...(mutation ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      },
    );
    req.on('error', reject);
    req.end(mutation ? '{}' : undefined);
  });
}

async function enroll(
  c: Coordinator,
  name: string,
): Promise<{ api: ApiClient; token: string; pin: Pin }> {
  const added = await runKinvaultd(['device', 'add', name, '--data-dir', c.dataDir, '--json']);
  const e = decodeEnrollmentCode((JSON.parse(added.stdout) as { code: string }).code);
  const pin = await fetchPinnedCertificate(e.url, e.fingerprint);
  const r = await apiClient({ url: e.url, pin }).enroll.mutate({ token: e.token });
  return { api: apiClient({ url: e.url, pin, token: r.deviceToken }), token: r.deviceToken, pin };
}

describe('coordinator API (built kinvaultd, agent transport)', () => {
  let c: Coordinator;
  let anna: Awaited<ReturnType<typeof enroll>>;

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator();
    c = await startCoordinator(dataDir, port);
    anna = await enroll(c, 'anna-laptop');
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('enrolls once per code, and stores the household key files sent by the first device', async () => {
    expect(await anna.api.household.get.query()).toBeNull();
    const repositoryId = systemRandom(16);
    const { code } = generateRecoveryCode(systemRandom);
    await anna.api.household.create.mutate({
      repositoryId: Buffer.from(repositoryId).toString('base64'),
      boxPublicKey: Buffer.from(keys.boxPublicKey).toString('base64'),
      signPublicKey: Buffer.from(keys.signPublicKey).toString('base64'),
      passphraseKeyFile: Buffer.from(
        createKeyFile(masterKey, repositoryId, { passphrase: 'pw' }, weak),
      ).toString('base64'),
      recoveryKeyFile: Buffer.from(
        createKeyFile(masterKey, repositoryId, { recoveryCode: code }, weak),
      ).toString('base64'),
    });
    const h = await anna.api.household.get.query();
    expect(h?.repositoryId).toBe(toHex(repositoryId));
    await expect(
      anna.api.household.create.mutate({
        repositoryId: 'AA==',
        boxPublicKey: 'AA==',
        signPublicKey: 'AA==',
        passphraseKeyFile: 'AA==',
        recoveryKeyFile: 'AA==',
      }),
    ).rejects.toThrow();
  });

  it("replaces a key file only with the household's signature of that change, keeps the old one, and can undo it", async () => {
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    const h = (await anna.api.household.get.query())!;
    const repositoryId = Buffer.from(h.repositoryId, 'hex');
    const current = Buffer.from(h.passphraseKeyFile, 'base64');
    expect(h.passphraseGeneration).toBe(0);
    // An attacker's master key: a valid key file for this repository id, its own signature.
    const attacker = systemRandom(32);
    const evil = createKeyFile(attacker, repositoryId, { passphrase: 'pwned' }, weak);
    const change = {
      repositoryId,
      kind: KeyFileKind.passphrase,
      generation: 0,
      current,
      next: evil,
    };
    const replace = (keyFile: Uint8Array, signature: Uint8Array) =>
      anna.api.household.replaceKeyFile.mutate({
        kind: 1,
        keyFile: b64(keyFile),
        signature: b64(signature),
      });
    await expect(
      replace(evil, signKeyFileReplacement(deriveKeys(attacker), change)),
    ).rejects.toThrow(/not signed with this household's key/);
    await expect(replace(evil, new Uint8Array(64))).rejects.toThrow(/not signed/);
    expect((await anna.api.household.get.query())!.passphraseKeyFile).toBe(h.passphraseKeyFile);

    // The household's own signature works, once: replayed later it no longer matches.
    const next = createKeyFile(masterKey, repositoryId, { passphrase: 'new one' }, weak);
    const signature = signKeyFileReplacement(keys, { ...change, next });
    await replace(next, signature);
    expect((await anna.api.household.get.query())!).toMatchObject({
      passphraseKeyFile: b64(next),
      passphraseGeneration: 1,
    });
    // Sent again (as when its answer was lost): done, once.
    await replace(next, signature);
    expect((await anna.api.household.get.query())!.passphraseGeneration).toBe(1);
    // Used for another change: refused.
    const other = createKeyFile(masterKey, repositoryId, { passphrase: 'other' }, weak);
    await expect(replace(other, signature)).rejects.toThrow(/not signed/);

    // The NAS owner sees the change and can undo it.
    const listed = await runKinvaultd(['keys', '--data-dir', c.dataDir, '--json']);
    const versions = JSON.parse(listed.stdout) as {
      id: string;
      kind: string;
      replacedBy: string;
    }[];
    expect(versions).toEqual([
      expect.objectContaining({ kind: 'passphrase', replacedBy: 'anna-laptop' }),
    ]);
    const undo = await runKinvaultd(['keys', 'restore', versions[0]!.id, '--data-dir', c.dataDir]);
    expect(undo.stderr).toBe('');
    expect(undo.code).toBe(0);
    expect((await anna.api.household.get.query())!.passphraseKeyFile).toBe(h.passphraseKeyFile);
    expect(
      JSON.parse((await runKinvaultd(['keys', '--data-dir', c.dataDir, '--json'])).stdout),
    ).toHaveLength(2);
    // The file is as it was, but its generation moved on: the old signature is dead.
    await expect(replace(next, signature)).rejects.toThrow(/not signed/);
    expect(c.log()).toMatch(/passphrase key file was replaced by anna-laptop/);
  });

  it('accepts a declared pack over tus, verifies it, and answers dedup queries', async () => {
    const p = await makePack(5);
    expect(await anna.api.packs.declare.mutate(declaration(p))).toEqual({ needed: true });
    expect((await anna.api.blobs.have.mutate({ ids: p.ids })).found).toEqual([]);
    await upload(anna, c.url, p.info.name, p.bytes);
    const found = (await anna.api.blobs.have.mutate({ ids: [...p.ids, 'ab'.repeat(32)] })).found;
    expect(found.map((f) => f.id).sort()).toEqual([...p.ids].sort());
    expect(new Set(found.map((f) => f.pack))).toEqual(new Set([p.info.name]));
    // Which packs hold these ids, each once, and which of the ids are stored nowhere.
    expect(await anna.api.blobs.packsOf.mutate({ ids: [...p.ids, 'ab'.repeat(32)] })).toEqual({
      packs: [p.info.name],
      missing: ['ab'.repeat(32)],
    });
    expect(await anna.api.packs.declare.mutate(declaration(p))).toEqual({ needed: false });

    // Download, whole and by range, from the pinned coordinator.
    const auth = { authorization: `Bearer ${anna.token}` };
    const whole = await get(`${c.url}/packs/${p.info.name}`, anna.pin, auth);
    expect(whole.status).toBe(200);
    expect(createHash('sha256').update(whole.body).digest('hex')).toBe(p.info.name);
    const e = p.info.entries[2]!;
    const ranged = await get(`${c.url}/packs/${p.info.name}`, anna.pin, {
      ...auth,
      range: `bytes=${e.offset}-${e.offset + e.length - 1}`,
    });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(p.bytes.subarray(e.offset, e.offset + e.length))).toBe(true);
    expect(
      (await get(`${c.url}/packs/${p.info.name}`, anna.pin, { ...auth, range: 'bytes=999999999-' }))
        .status,
    ).toBe(416);
    expect((await get(`${c.url}/packs/${'cd'.repeat(32)}`, anna.pin, auth)).status).toBe(404);
  });

  it('refuses an upload whose bytes do not match its name, and registers nothing', async () => {
    const p = await makePack(3);
    await anna.api.packs.declare.mutate(declaration(p));
    const wrong = Buffer.from(p.bytes);
    wrong[100]! ^= 1;
    await expect(upload(anna, c.url, p.info.name, wrong)).rejects.toThrow(/HTTP 422.*SHA-256/);
    expect((await anna.api.blobs.have.mutate({ ids: p.ids })).found).toEqual([]);
    expect((await anna.api.packs.missing.mutate({ names: [p.info.name] })).names).toEqual([
      p.info.name,
    ]);
    const undeclared = await makePack(1);
    await expect(upload(anna, c.url, undeclared.info.name, undeclared.bytes)).rejects.toThrow(
      /HTTP 400.*not declared/,
    );
  });

  it("keeps each device's declaration: another device cannot replace it and make the upload fail", async () => {
    const carol = await enroll(c, 'carol-laptop');
    const p = await makePack(2);
    await anna.api.packs.declare.mutate(declaration(p));
    // Carol declares the same name with a blob list of her own choosing.
    await carol.api.packs.declare.mutate({
      ...declaration(p),
      blobs: [{ type: 1, id: 'ee'.repeat(32) }],
    });
    await upload(anna, c.url, p.info.name, p.bytes);
    const found = (await anna.api.blobs.have.mutate({ ids: [...p.ids, 'ee'.repeat(32)] })).found;
    expect(found.map((f) => f.id).sort()).toEqual([...p.ids].sort());
  });

  it('commits a snapshot only when every pack it needs is stored', async () => {
    const p = await makePack(2);
    const snapshot = sealSnapshot(keys, {
      startNs: 1n,
      endNs: 2n,
      tree: systemRandom(32),
      parent: null,
      hostname: 'h',
      device: 'anna-laptop',
      paths: ['/x'],
      tags: [],
      partial: false,
      errors: [],
      stats: { files: 1, dirs: 1, bytes: 1, filesNew: 1, bytesNew: 1 },
    });
    const commit = () =>
      anna.api.snapshots.commit.mutate({
        id: snapshot.id,
        sealed: Buffer.from(snapshot.bytes).toString('base64'),
        packs: [p.info.name],
      });
    await expect(commit()).rejects.toThrow(/does not have/);
    await anna.api.packs.declare.mutate(declaration(p));
    await upload(anna, c.url, p.info.name, p.bytes);
    await commit();
    const list = await anna.api.snapshots.list.query();
    expect(list).toEqual([expect.objectContaining({ id: snapshot.id, device: 'anna-laptop' })]);
    const back = await anna.api.snapshots.get.query({ id: snapshot.id });
    expect(Buffer.from(back.sealed, 'base64').equals(Buffer.from(snapshot.bytes))).toBe(true);
    await expect(
      anna.api.snapshots.commit.mutate({
        id: 'ab'.repeat(32),
        sealed: Buffer.from(snapshot.bytes).toString('base64'),
        packs: [],
      }),
    ).rejects.toThrow(/hash to/);
  });

  it('streams live events over a pinned websocket to enrolled devices only', async () => {
    const stream = eventStream({ url: c.url, pin: anna.pin, token: anna.token });
    const seen: { type: string }[] = [];
    const sub = stream.client.events.subscribe(undefined, {
      onData: (e) => void seen.push(e as { type: string }),
    });
    const outsider = eventStream({ url: c.url, pin: anna.pin, token: 'z'.repeat(43) });
    let refused: unknown;
    const outsiderSub = outsider.client.events.subscribe(undefined, {
      onData: () => {},
      onError: (e) => (refused = e),
    });
    try {
      await new Promise((r) => setTimeout(r, 500)); // let the subscriptions start
      const p = await makePack(1);
      await anna.api.packs.declare.mutate(declaration(p));
      await upload(anna, c.url, p.info.name, p.bytes);
      const snapshot = sealSnapshot(keys, {
        startNs: 3n,
        endNs: 4n,
        tree: systemRandom(32),
        parent: null,
        hostname: 'h',
        device: 'anna-laptop',
        paths: ['/y'],
        tags: [],
        partial: false,
        errors: [],
        stats: { files: 0, dirs: 1, bytes: 0, filesNew: 0, bytesNew: 0 },
      });
      await anna.api.snapshots.commit.mutate({
        id: snapshot.id,
        sealed: Buffer.from(snapshot.bytes).toString('base64'),
        packs: [p.info.name],
      });
      for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect(seen).toEqual([
        expect.objectContaining({ type: 'pack.stored', pack: p.info.name, device: 'anna-laptop' }),
        expect.objectContaining({
          type: 'snapshot.committed',
          snapshot: snapshot.id,
          device: 'anna-laptop',
        }),
      ]);
      expect(String((refused as Error | undefined)?.message)).toMatch(
        /not enrolled or was revoked/,
      );
    } finally {
      sub.unsubscribe();
      outsiderSub.unsubscribe();
      await stream.close();
      await outsider.close();
    }
  });

  it('rejects unauthenticated, revoked and other-device requests on every route, and malformed input with a 4xx', async () => {
    const stranger = apiClient({ url: c.url, pin: anna.pin });
    await expect(stranger.household.get.query()).rejects.toThrow(/not enrolled or was revoked/);
    await expect(stranger.enroll.mutate({ token: 'x'.repeat(43) })).rejects.toThrow(
      /unknown, already used or expired/,
    );
    const p = await makePack(1);
    await expect(
      uploadPack({
        conn: { url: c.url, pin: anna.pin, token: 'y'.repeat(43) },
        name: p.info.name,
        data: p.bytes,
        size: p.info.size,
        retryDelays: [],
      }),
    ).rejects.toThrow(/HTTP 401/);
    expect((await get(`${c.url}/packs/${'ab'.repeat(32)}`, anna.pin)).status).toBe(401);

    // Another device may not continue anna's upload.
    const bob = await enroll(c, 'bob-laptop');
    await anna.api.packs.declare.mutate(declaration(p));
    const created = await new Promise<{ status: number; location: string }>((resolve, reject) => {
      const req = request(
        `${c.url}/packs/uploads`,
        {
          ...tlsOptions(anna.pin),
          method: 'POST',
          headers: {
            authorization: `Bearer ${anna.token}`,
            'tus-resumable': '1.0.0',
            'upload-length': String(p.info.size),
            'upload-metadata': `pack ${Buffer.from(p.info.name).toString('base64')}`,
          },
        },
        (res) => {
          res.resume();
          resolve({
            status: res.statusCode ?? 0,
            location: new URL(String(res.headers.location), c.url).href,
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(created.status).toBe(201);
    const hijack = await new Promise<number>((resolve, reject) => {
      const req = request(
        created.location,
        {
          ...tlsOptions(anna.pin),
          method: 'PATCH',
          headers: {
            authorization: `Bearer ${bob.token}`,
            'tus-resumable': '1.0.0',
            'upload-offset': '0',
            'content-type': 'application/offset+octet-stream',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(p.bytes);
    });
    expect(hijack).toBe(403);

    // Malformed input: a 4xx with a message that says what is wrong.
    await expect(anna.api.blobs.have.mutate({ ids: ['not-hex'] })).rejects.toThrow(
      /64 lowercase hex/,
    );

    // A revoked device loses access at once, on tRPC, tus and downloads.
    expect(
      (await runKinvaultd(['device', 'revoke', 'bob-laptop', '--data-dir', c.dataDir])).code,
    ).toBe(0);
    await expect(bob.api.snapshots.list.query()).rejects.toThrow(/not enrolled or was revoked/);
    expect(
      (
        await get(`${c.url}/packs/${'ab'.repeat(32)}`, bob.pin, {
          authorization: `Bearer ${bob.token}`,
        })
      ).status,
    ).toBe(401);
    await expect(upload(bob, c.url, p.info.name, p.bytes)).rejects.toThrow(/HTTP 401/);
  });

  it('refuses every tRPC procedure but enroll without the token of an enrolled device', async () => {
    // Listed from the router itself, so that a procedure added later is checked too.
    const procedures = Object.entries(appRouter._def.procedures) as [
      string,
      { _def: { type: string } },
    ][];
    expect(procedures.map(([path]) => path)).toEqual(
      expect.arrayContaining(['enroll', 'events', 'household.get', 'snapshots.list']),
    );
    const revoked = await enroll(c, 'old-phone');
    expect(
      (await runKinvaultd(['device', 'revoke', 'old-phone', '--data-dir', c.dataDir])).code,
    ).toBe(0);
    // No token; a well-formed one this coordinator never issued (another household's
    // device, whose coordinator is another one, holds such a token); a revoked device's.
    const tokens = [undefined, `Bearer ${'q'.repeat(43)}`, `Bearer ${revoked.token}`];
    const answers: string[] = [];
    for (const [path, procedure] of procedures) {
      if (path === 'enroll') continue;
      for (const authorization of tokens) {
        const r = await callProcedure(c.url, anna.pin, path, procedure._def.type, authorization);
        answers.push(`${path} ${refusal(procedure._def.type, r)}`);
      }
    }
    expect(answers).toEqual(
      procedures
        .filter(([path]) => path !== 'enroll')
        .flatMap(([path]) => tokens.map(() => `${path} 401 true`)),
    );
  });

  it('retries a coordinator that answers 503 (stopping or starting), and no other HTTP error', async () => {
    // A stand-in coordinator: fastify answers 503, not tRPC's shape, while it closes.
    const dir = await mkdtemp(join(tmpdir(), 'kinvault-503-'));
    const tls = await createTls(join(dir, 'key.pem'), join(dir, 'cert.pem'), ['127.0.0.1']);
    let answers = [503, 503, 200];
    let calls = 0;
    const server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
      const status = answers[calls++] ?? 500;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        status === 200
          ? JSON.stringify({ result: { data: [] } })
          : JSON.stringify({ statusCode: status, error: 'Service Unavailable' }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const retries: string[] = [];
      const api = apiClient({
        url: `https://127.0.0.1:${port}`,
        pin: { certPem: tls.cert, fingerprint: tls.fingerprint },
        token: 'x',
        onRetry: (_what, attempt, e) => retries.push(`${attempt}: ${(e as Error).message}`),
      });
      expect(await api.snapshots.list.query()).toEqual([]);
      expect(calls).toBe(3);
      expect(retries).toEqual([
        expect.stringMatching(/^1: .*not taking requests right now \(HTTP 503/),
        expect.stringMatching(/^2: /),
      ]);
      answers = [502];
      calls = 0;
      await expect(api.snapshots.list.query()).rejects.toThrow();
      expect(calls).toBe(1);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
