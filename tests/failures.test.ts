/**
 * End to end: how the agent fails. Every failure ends as one clear line on stderr (and,
 * with --json, one JSON error object on stdout), never shows a request, a header or a
 * token (not even with --debug), a backup whose coordinator goes away mid-run gives up
 * once its retries are spent (--retry-for), and interactive commands give up within
 * seconds when the coordinator is down.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initCoordinator,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
  removeTempDirs,
} from './support/kinvaultd.js';
import { enrollDevice, runKinvault, spawnKinvault } from './support/kinvault.js';
import type { RunResult } from './support/kinvaultd.js';

describe('agent failures (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;
  let token: string;
  const mounted: string[] = [];

  /** No token, Authorization header or request object in anything the agent printed. */
  const clean = (r: RunResult) => {
    const all = r.stdout + r.stderr;
    expect(all).not.toContain(token);
    expect(all).not.toMatch(/authorization|bearer/i);
    expect(all).not.toMatch(/ClientRequest|_header|IncomingMessage/);
  };
  const oneLine = (r: RunResult) => {
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^kinvault: /);
    return lines[0]!;
  };

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-failures-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-failures-work-');
    anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    token = (JSON.parse(await readFile(join(anna, 'agent.json'), 'utf8')) as { token: string })
      .token;
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    for (const m of mounted) execFileSync('umount', [m]);
    await removeTempDirs();
  });

  it('the coordinator goes away mid-backup and stays away past the retries: one line, no token, a JSON error', async () => {
    const src = join(work, 'big');
    await mkdir(src, { recursive: true });
    for (let i = 0; i < 4; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(20 << 20));
    const agent = spawnKinvault(anna, ['backup', src, '--json', '--retry-for', '4']);
    let stdout = '';
    let stderr = '';
    agent.stdout!.on('data', (d) => (stdout += d));
    agent.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
    // Mid-run: once the coordinator holds the first pack, while more are on their way.
    const packs = join(c.dataDir, 'packs');
    const heldSome = async () =>
      (await readdir(packs, { recursive: true }).catch(() => [])).some((f) =>
        /[0-9a-f]{64}$/.test(f),
      );
    while (!(await heldSome())) {
      expect(agent.exitCode, stderr).toBeNull();
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.stop();
    const down = Date.now();
    const code = await exited;
    // One window of 4 s for the whole outage, not 4 s for each call made meanwhile (that
    // took 8 s: two calls one after the other), nor the default 90 s.
    expect(Date.now() - down).toBeLessThan(4000 + 3000);
    const r = { code: code ?? 1, stdout, stderr };
    expect(r.code).toBe(1);
    clean(r);
    // Waiting for it is said as it happens; the failure is the last line, alone.
    const lines = r.stderr.trim().split('\n');
    for (const l of lines.slice(0, -1))
      expect(l).toMatch(/^kinvault: .* Retrying in [\d.]+ s \(attempt \d+ of \d+\)\.$/);
    expect(lines.at(-1)).toMatch(
      /^kinvault: Cannot reach the coordinator at https:\/\/127\.0\.0\.1:\d+/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const out = r.stdout.trim().split('\n');
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]!)).toEqual({
      error: {
        code: expect.any(String),
        message: expect.stringMatching(/Cannot reach/),
        retryable: true,
      },
    });
    c = await startCoordinator(c.dataDir, c.port);
  }, 120_000);

  it("the coordinator's disk is full: the backup fails with one line, no token, and a JSON error with --json", async () => {
    const src = join(work, 'src');
    await mkdir(src, { recursive: true });
    for (let i = 0; i < 3; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(12 << 20));
    // The coordinator's upload folder on a filesystem too small for one pack.
    const uploads = join(c.dataDir, 'uploads');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', uploads]);
    mounted.push(uploads);
    const r = await runKinvault(anna, ['backup', src, '--json']);
    expect(r.code).toBe(1);
    clean(r);
    oneLine(r);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      error: { code: string; message: string };
    };
    expect(out.error.message).toMatch(/pack/i);
    const debug = await runKinvault(anna, ['--debug', 'backup', src]);
    expect(debug.code).toBe(1);
    clean(debug);
    expect(debug.stderr).toMatch(/\n\s+at /); // a stack, with --debug only
  }, 300_000);

  it('interactive commands fail within seconds while the coordinator is down, with one line each', async () => {
    await c.stop();
    for (const args of [
      ['snapshots'],
      ['ls', 'latest'],
      ['restore', 'latest', '--target', join(work, 'nowhere')],
    ]) {
      // A 91 s wait (the long retries) would exceed this command timeout and fail.
      const r = await runKinvault(anna, [...args, '--json'], {}, 30_000);
      expect(r.code).toBe(1);
      clean(r);
      expect(oneLine(r)).toMatch(/Cannot reach the coordinator at https:\/\/127\.0\.0\.1:\d+/);
      expect(JSON.parse(r.stdout.trim())).toMatchObject({
        error: { code: 'INTERNAL', retryable: true },
      });
    }
  }, 180_000);
});
