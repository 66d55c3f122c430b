/**
 * End to end: runs the built demo command (npm test builds first) as a user would.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, traversableTempDir } from './support/kinvaultd.js';

const demo = fileURLToPath(new URL('../packages/format/dist/demo/main.js', import.meta.url));

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [demo, ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const lastJson = (out: string) =>
  JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;

describe('npm run demo:format (built command)', () => {
  afterAll(() => removeTempDirs());

  it('backs up, restores from the repository alone, verifies; a second run stores almost nothing', async () => {
    const work = await traversableTempDir('kinvault-e2e-');
    const folder = join(work, 'photos');
    await mkdir(join(folder, 'a', 'b'), { recursive: true });
    await writeFile(join(folder, 'a', 'big.jpg'), randomBytes(6_000_000));
    await writeFile(join(folder, 'a', 'b', 'small.txt'), 'hello');
    await writeFile(join(folder, 'empty'), '');
    const env = { KINVAULT_PASSPHRASE: 'e2e passphrase' };
    const repo = join(work, 'repo');

    const first = await run(
      [folder, '--repo', repo, '--restore-to', join(work, 'r1'), '--json'],
      env,
    );
    expect(first.stderr).toContain('Restore verified');
    expect(first.code).toBe(0);
    const a = lastJson(first.stdout);
    expect(a).toMatchObject({ ok: true, files: 3, bytes: 6_000_005, problems: [] });
    expect(a.bytes_new).toBe(6_000_005);

    await appendFile(join(folder, 'a', 'b', 'small.txt'), ' again');
    const second = await run(
      [folder, '--repo', repo, '--restore-to', join(work, 'r2'), '--json'],
      env,
    );
    expect(second.code).toBe(0);
    const b = lastJson(second.stdout);
    expect(b).toMatchObject({ ok: true, files: 3 });
    expect(b.bytes_new).toBe(11); // only the changed small file is new
    expect(await readdir(join(repo, 'snapshots'))).toHaveLength(2);
  });

  it('fails clearly: wrong passphrase, missing folder, bad flag, existing restore target, damaged pack', async () => {
    const work = await traversableTempDir('kinvault-e2e-');
    const folder = join(work, 'f');
    await mkdir(folder);
    await writeFile(join(folder, 'x.bin'), randomBytes(100_000));
    const repo = join(work, 'repo');
    expect(
      (
        await run([folder, '--repo', repo, '--restore-to', join(work, 'r0')], {
          KINVAULT_PASSPHRASE: 'right',
        })
      ).code,
    ).toBe(0);

    const wrong = await run([folder, '--repo', repo, '--restore-to', join(work, 'r1')], {
      KINVAULT_PASSPHRASE: 'wrong',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/WRONG_PASSPHRASE.*passphrase is wrong/);

    const missing = await run([join(work, 'nope')], { KINVAULT_PASSPHRASE: 'right' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Cannot read the folder .*nope/);

    const badFlag = await run(['--threads', 'lots'], {});
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--threads must be a whole number/);

    const exists = await run([folder, '--restore-to', folder], { KINVAULT_PASSPHRASE: 'right' });
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/already exists/);

    // Damage one pack: the next run reads every pack header and must refuse it by name.
    const prefix = (await readdir(join(repo, 'packs'))).find((p) => !p.startsWith('.'))!;
    const pack = join(repo, 'packs', prefix, (await readdir(join(repo, 'packs', prefix)))[0]!);
    await appendFile(pack, 'garbage');
    const damaged = await run([folder, '--repo', repo, '--restore-to', join(work, 'r2')], {
      KINVAULT_PASSPHRASE: 'right',
    });
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/PACK_CORRUPT/);

    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: npm run demo/);
  });
});
