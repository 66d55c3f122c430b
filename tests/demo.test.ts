/** End to end: the README's main job, `npm run demo -- FOLDER`, as a user runs it. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, traversableTempDir } from './support/kinvaultd.js';

const demo = fileURLToPath(new URL('../scripts/demo.mjs', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the demo with its own temporary directory (TMPDIR), so that what it leaves shows. */
function run(args: string[], tmp?: string): Promise<Run> {
  const env = tmp ? { ...process.env, TMPDIR: tmp } : process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [demo, ...args],
      { env, timeout: 240_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Report {
  ok: boolean;
  problems?: string[];
  failure?: string;
  workDir: string;
  kept: boolean;
  bytes: number;
  status?: { packs: number };
}
const report = (r: Run) => JSON.parse(r.stdout.trim().split('\n').pop()!) as Report;

/** A small folder to back up. */
async function photos(): Promise<string> {
  const folder = join(await traversableTempDir('kinvault-src-'), 'photos');
  await mkdir(join(folder, 'album'), { recursive: true });
  await writeFile(join(folder, 'album', 'a.jpg'), randomBytes(3_000_000));
  await writeFile(join(folder, 'notes.txt'), 'hello');
  return folder;
}

/** The kept folder's removal command as printed; runs it and checks the folder is gone. */
async function runRemovalCommand(r: Run, workDir: string): Promise<void> {
  const command = /^ {2}(rm -rf .+)$/m.exec(r.stderr)?.[1];
  expect(command).toBe(`rm -rf '${workDir}'`);
  await new Promise<void>((resolve, reject) =>
    execFile('sh', ['-c', command!], (e) => (e ? reject(e) : resolve())),
  );
  expect(existsSync(workDir)).toBe(false);
}

describe('npm run demo (coordinator + agent, embedded defaults)', () => {
  afterAll(() => removeTempDirs());

  it('backs up a folder, restores it and verifies it, then removes everything it made', async () => {
    const folder = await photos();
    const tmp = await traversableTempDir('kinvault-tmp-');
    const r = await run([folder, '--json'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const out = report(r);
    expect(out).toMatchObject({ ok: true, problems: [], kept: false });
    expect(out.status!.packs).toBeGreaterThan(0);
    expect(out.bytes).toBeGreaterThan(50e6); // the coordinator's database, at least
    expect(r.stderr).toContain('Restore verified');
    expect(r.stderr).toContain(`Removed the demo's folder ${out.workDir} (`);
    expect(await readdir(tmp)).toEqual([]);
  }, 240_000);

  it('with --keep keeps its folder, with the coordinator stopped, and prints how to remove it', async () => {
    const tmp = await traversableTempDir('kinvault-tmp-');
    const r = await run([await photos(), '--keep', '--json'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const out = report(r);
    expect(out).toMatchObject({ ok: true, kept: true });
    expect(await readdir(tmp)).toEqual([out.workDir.slice(tmp.length + 1)]);
    expect((await readdir(out.workDir)).sort()).toEqual(['agent', 'coordinator', 'restored']);
    expect(existsSync(join(out.workDir, 'coordinator/postgres/postmaster.pid'))).toBe(false);
    expect(r.stderr).toMatch(/The demo's folder .+ \(\d+ MB\) is kept\. Remove it with:/);
    expect(r.stderr).toContain('Next: start the coordinator again');
    await runRemovalCommand(r, out.workDir);
  }, 240_000);

  it('after a failed backup keeps its folder, with the coordinator stopped, and prints how to remove it', async () => {
    const folder = await photos();
    // A named pipe cannot be backed up: the backup commits, but as partial (exit code 3).
    await new Promise<void>((resolve, reject) =>
      execFile('mkfifo', [join(folder, 'pipe')], (e) => (e ? reject(e) : resolve())),
    );
    const tmp = await traversableTempDir('kinvault-tmp-');
    const r = await run([folder, '--json'], tmp);
    expect(r.code).toBe(1);
    const out = report(r);
    expect(out).toMatchObject({ ok: false, failure: 'the backup failed (see above)', kept: true });
    expect(r.stderr).toContain('demo failed: the backup failed');
    expect(existsSync(join(out.workDir, 'coordinator'))).toBe(true);
    expect(existsSync(join(out.workDir, 'coordinator/postgres/postmaster.pid'))).toBe(false);
    expect(r.stderr).toMatch(/The demo's folder .+ \(\d+ MB\) is kept\. Remove it with:/);
    await runRemovalCommand(r, out.workDir);
    expect(await readdir(tmp)).toEqual([]);
  }, 240_000);

  it('refuses a folder it cannot read, with exit code 2, and makes no folder of its own', async () => {
    const tmp = await traversableTempDir('kinvault-tmp-');
    const r = await run(['/nonexistent/kinvault-demo'], tmp);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read the folder \/nonexistent\/kinvault-demo/);
    expect(await readdir(tmp)).toEqual([]);
  });
});
