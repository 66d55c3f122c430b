/**
 * End to end, breaking things: kill -9 the agent mid-backup, restart the coordinator
 * mid-backup. The built commands run as a user would; a counting proxy between them
 * measures what crosses the wire.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTrees } from '../packages/format/demo/verify.js';
import {
  freePort,
  initCoordinator,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
  removeTempDirs,
} from './support/kinvaultd.js';
import { enrollDevice, lastJson, runKinvault, spawnKinvault } from './support/kinvault.js';
import { countingProxy, type CountingProxy } from './support/proxy.js';

const MiB = 1024 * 1024;
/** The largest pack: a 16 MiB target plus one maximal blob, header and trailer. */
const MAX_PACK = 16 * MiB + 8 * MiB + 64 * 1024;

async function bigTree(dir: string, files: number, size: number): Promise<number> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < files; i++)
    await writeFile(join(dir, `VID_${String(i).padStart(3, '0')}.mp4`), randomBytes(size));
  return files * size;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('resilience (built commands)', () => {
  let c: Coordinator;
  let proxy: CountingProxy;
  let work: string;
  let proxyPort: number;

  beforeAll(async () => {
    proxyPort = await freePort();
    const { dataDir, port } = await initCoordinator(
      'kinvault-resilience-',
      `https://127.0.0.1:${proxyPort}`,
    );
    c = await startCoordinator(dataDir, port);
    // The proxy listens on the port the enrollment codes name.
    proxy = await countingProxy(c.port, proxyPort);
    work = await traversableTempDir('kinvault-resilience-work-');
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await c?.stop();
    await removeTempDirs();
  });

  it('kill -9 at random moments: the backup completes, restores identical, and each interruption re-sends at most one pack', async () => {
    const state = join(work, 'killed-state');
    await enrollDevice(c.dataDir, 'killed-laptop', state);
    const src = join(work, 'videos');
    const total = await bigTree(src, 16, 12 * MiB);

    let kills = 0;
    const begin = proxy.sent();
    for (let i = 0; i < 4; i++) {
      const before = proxy.sent();
      const child = spawnKinvault(state, ['backup', src, '--json']);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      // Kill once this run has sent a random 5–30 MB: mid-pack, most of the time.
      const after = (5 + Math.random() * 25) * 1e6;
      try {
        await waitFor(() => proxy.sent() - before > after || child.exitCode !== null, 60_000);
      } catch {
        /* the run finished first */
      }
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        kills++;
      }
      await exited;
    }
    const final = await runKinvault(state, ['backup', src, '--json']);
    expect(final.stderr).toBe('');
    expect(final.code).toBe(0);
    const summary = lastJson<{ snapshot: string; resumed_packs: number }>(final.stdout);

    const wire = proxy.sent() - begin;
    const status = JSON.parse(
      (await runKinvaultd(['status', '--data-dir', c.dataDir, '--json'])).stdout,
    ) as { storedBytes: number };
    const overheadPerRun = 2 * MiB; // TLS, tRPC, tus requests
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(status.storedBytes).toBeGreaterThanOrEqual(total);
    expect(wire).toBeLessThanOrEqual(
      status.storedBytes + kills * MAX_PACK + (kills + 1) * overheadPerRun,
    );
    console.log(
      `kill -9 test: ${kills} kills, ${(wire / 1e6).toFixed(1)} MB sent for ${(status.storedBytes / 1e6).toFixed(1)} MB stored; re-sent ${((wire - status.storedBytes) / kills / 1e6).toFixed(1)} MB per interruption (bound ${(MAX_PACK / 1e6).toFixed(1)} MB); ${summary.resumed_packs} spooled packs resumed`,
    );

    const target = join(work, 'killed-restore');
    const r = await runKinvault(state, ['restore', summary.snapshot, '--target', target]);
    expect(r.code).toBe(0);
    expect(await compareTrees(src, join(target, src))).toEqual([]);
  }, 600_000);

  it('the coordinator restarts mid-backup: the agent retries with backoff and finishes', async () => {
    const state = join(work, 'restart-state');
    await enrollDevice(c.dataDir, 'restart-laptop', state);
    const src = join(work, 'more-videos');
    await bigTree(src, 10, 10 * MiB);
    const before = proxy.sent();
    const child = spawnKinvault(state, ['backup', src, '--json']);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await waitFor(() => proxy.sent() - before > 20e6, 120_000);
    expect(await c.stop()).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    c = await startCoordinator(c.dataDir, c.port);
    // (the message is the backup's stderr: it says why, should the backup fail)
    expect(await exited, err).toBe(0);
    // Meanwhile the backup said why it waited.
    expect(err).toMatch(
      /Cannot reach the coordinator at https:\/\/127\.0\.0\.1:\d+ \([A-Z_]+\)\. Is kinvaultd running there.*Retrying in [\d.]+ s \(attempt 1 of 9\)/,
    );
    const summary = lastJson<{ snapshot: string }>(out);
    const target = join(work, 'restart-restore');
    expect((await runKinvault(state, ['restore', summary.snapshot, '--target', target])).code).toBe(
      0,
    );
    expect(await compareTrees(src, join(target, src))).toEqual([]);
  }, 600_000);
});
