/** End to end: the README's main job, `npm run demo -- FOLDER`, as a user runs it. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, traversableTempDir } from './support/kinvaultd.js';

const demo = fileURLToPath(new URL('../scripts/demo.mjs', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [demo, ...args], { timeout: 240_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run demo (coordinator + agent, embedded defaults)', () => {
  /** The demo's own folder (it keeps it for the user to look around). */
  const demoDirs: string[] = [];
  afterAll(() => removeTempDirs(...demoDirs));

  it('backs up a folder, restores it and verifies it, then says where everything is', async () => {
    const folder = join(await traversableTempDir('kinvault-demo-src-'), 'photos');
    await mkdir(join(folder, 'album'), { recursive: true });
    await writeFile(join(folder, 'album', 'a.jpg'), randomBytes(3_000_000));
    await writeFile(join(folder, 'notes.txt'), 'hello');
    const r = await run([folder, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      ok: boolean;
      problems: string[];
      dataDir: string;
      status: { packs: number };
    };
    demoDirs.push(dirname(out.dataDir));
    expect(out).toMatchObject({ ok: true, problems: [] });
    expect(out.status.packs).toBeGreaterThan(0);
    expect(r.stderr).toContain('Restore verified');
  }, 240_000);

  it('refuses a folder it cannot read, with exit code 2', async () => {
    const r = await run(['/nonexistent/kinvault-demo']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read the folder \/nonexistent\/kinvault-demo/);
  });
});
