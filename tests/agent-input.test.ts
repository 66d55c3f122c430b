/**
 * End to end: what the agent does with what a user gives it. "latest" means this device's
 * newest snapshot; a path that does not exist is refused before anything is committed; a
 * file that changes once while it is read is read again and stored as it settled, one
 * that keeps changing is named in the snapshot's errors; every flag has an environment
 * twin.
 */
import { spawn } from 'node:child_process';
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
import { enrollDevice, lastJson, runKinvault, spawnKinvault } from './support/kinvault.js';

interface Summary {
  snapshot: string;
  files_changed: number;
  bytes_read: number;
  partial: boolean;
  errors: { path: string; message: string }[];
}

describe('agent input (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;
  let bob: string;
  const snapshots = async (state: string, ...args: string[]) =>
    JSON.parse((await runKinvault(state, ['snapshots', '--json', ...args])).stdout) as {
      id: string;
      device: string;
      paths: string[];
    }[];

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-input-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-input-work-');
    anna = join(work, 'anna');
    bob = join(work, 'bob');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    await enrollDevice(c.dataDir, 'bob-laptop', bob);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('"latest" is this device\'s newest snapshot; --device NAME picks another device\'s', async () => {
    const annas = join(work, 'annas');
    const bobs = join(work, 'bobs');
    await mkdir(annas);
    await mkdir(bobs);
    await writeFile(join(annas, 'anna.txt'), 'anna');
    await writeFile(join(bobs, 'bob.txt'), 'bob');
    const none = await runKinvault(anna, ['ls', 'latest', '--json']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no snapshots yet/);
    expect(JSON.parse(none.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await runKinvault(bob, ['backup', bobs])).code).toBe(0);
    // Anna has none of her own yet: "latest" does not silently mean Bob's.
    const notMine = await runKinvault(anna, ['restore', 'latest', '--target', join(work, 'x')]);
    expect(notMine.code).toBe(2);
    expect(notMine.stderr).toMatch(
      /"anna-laptop" has no snapshots. Give --device NAME.*bob-laptop/,
    );
    expect((await runKinvault(anna, ['backup', annas])).code).toBe(0);
    expect((await runKinvault(bob, ['backup', bobs])).code).toBe(0); // Bob's is the newest

    const target = join(work, 'restored-latest');
    expect((await runKinvault(anna, ['restore', 'latest', '--target', target])).code).toBe(0);
    expect(await readdir(join(target, annas))).toEqual(['anna.txt']);
    const ls = await runKinvault(anna, ['ls', 'latest', bobs.slice(1), '--device', 'bob-laptop']);
    expect(ls.stdout).toMatch(/bob\.txt/);
    const viaEnv = await runKinvault(anna, ['ls', 'latest', bobs.slice(1), '--json'], {
      KINVAULT_DEVICE: 'bob-laptop',
    });
    expect(JSON.parse(viaEnv.stdout)).toEqual([expect.objectContaining({ name: 'bob.txt' })]);
    expect((await snapshots(anna, '--device', 'bob-laptop')).map((s) => s.device)).toEqual([
      'bob-laptop',
      'bob-laptop',
    ]);
    expect(new Set((await snapshots(anna)).map((s) => s.device))).toEqual(
      new Set(['anna-laptop', 'bob-laptop']),
    );
  });

  it('refuses a path that does not exist before committing anything (exit 2)', async () => {
    const before = (await snapshots(anna)).length;
    const alone = await runKinvault(anna, ['backup', '/nonexistent/kinvault-input']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(
      /Nothing was backed up: \/nonexistent\/kinvault-input does not exist/,
    );
    const mixed = await runKinvault(anna, ['backup', join(work, 'annas'), join(work, 'gone')]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain(join(work, 'gone'));
    expect((await snapshots(anna)).length).toBe(before);
  });

  it('a file that keeps changing while it is read is named in the snapshot, and read again next time', async () => {
    const src = join(work, 'busy');
    await mkdir(src);
    const busy = join(src, 'database.db');
    await writeFile(busy, randomBytes(64 << 20));
    await writeFile(join(src, 'calm.txt'), 'calm');
    // Another program writes into the file every 2 ms while the backup runs.
    const writer = spawn(process.execPath, [
      '-e',
      `const fs = require('node:fs'); const fd = fs.openSync(${JSON.stringify(busy)}, 'r+');
       const stop = Date.now() + 120000;
       const tick = () => { if (Date.now() > stop) process.exit(0);
         fs.writeSync(fd, require('node:crypto').randomBytes(4096), 0, 4096, Math.floor(Math.random() * 16000) * 4096);
         setTimeout(tick, 2); };
       tick();`,
    ]);
    let r;
    try {
      r = await runKinvault(anna, ['backup', src, '--json']);
    } finally {
      writer.kill();
    }
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/database\.db: it kept changing while it was read/);
    const s = lastJson<Summary>(r.stdout);
    expect(s.partial).toBe(true);
    expect(s.errors).toEqual([
      expect.objectContaining({ path: busy, message: expect.stringMatching(/kept changing/) }),
    ]);
    // Once it is quiet, the next backup reads it again (its times were not recorded).
    const again = await runKinvault(anna, ['backup', src, '--json']);
    expect(again.code).toBe(0);
    expect(lastJson<Summary>(again.stdout)).toMatchObject({ files_changed: 1, partial: false });
  });

  it('a file that changes once while it is read is read again, and the snapshot holds what it settled to', async () => {
    const src = join(work, 'settles');
    await mkdir(src);
    const file = join(src, 'mailbox.db');
    const size = 64 << 20;
    await writeFile(file, randomBytes(size));
    // Another program writes into the file once, as soon as the agent has begun to read
    // it (the agent's descriptor for it, in /proc, has moved on from 0: the read began
    // after the agent took the file's state), then leaves it alone. It is running before
    // the agent starts, and is told the agent's pid.
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         const file = ${JSON.stringify(file)};
         process.stdout.write('ready\\n');
         process.stdin.once('data', (pid) => {
           const proc = '/proc/' + String(pid).trim();
           const stop = Date.now() + 60000;
           const reading = () => { try { return fs.readdirSync(proc + '/fd').some((fd) => {
             try { return fs.readlinkSync(proc + '/fd/' + fd) === file &&
               !/^pos:\\s+0$/m.test(fs.readFileSync(proc + '/fdinfo/' + fd, 'utf8')); } catch { return false; } });
           } catch { return false; } };
           while (!reading()) if (Date.now() > stop) process.exit(1);
           const fd = fs.openSync(file, 'r+');
           fs.writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 1 << 20);
           fs.closeSync(fd);
           process.exit(0);
         });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const wrote = new Promise<number | null>((r) => writer.once('exit', (code) => r(code)));
    await new Promise((r) => writer.stdout!.once('data', r));
    const agent = spawnKinvault(anna, ['backup', src, '--json']);
    let stdout = '';
    agent.stdout!.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
    writer.stdin!.write(`${agent.pid}\n`);
    expect(await wrote).toBe(0);
    expect(await exited).toBe(0);
    const s = lastJson<Summary>(stdout);
    expect(s).toMatchObject({ partial: false, errors: [], files_changed: 1 });
    expect(s.bytes_read).toBe(2 * size); // read twice: the change was seen
    const target = join(work, 'restored-settled');
    const restored = await runKinvault(anna, ['restore', s.snapshot, '--target', target]);
    expect(restored.code).toBe(0);
    const back = await readFile(join(target, file));
    expect(back.subarray(1 << 20, (1 << 20) + 4096).every((b) => b === 7)).toBe(true);
    expect(back.equals(await readFile(file))).toBe(true);
    // Stored under the times it settled with: the next backup finds it unchanged.
    const again = await runKinvault(anna, ['backup', src, '--json']);
    expect(lastJson<Summary>(again.stdout)).toMatchObject({ files_changed: 0, partial: false });
  });

  it('KINVAULT_FULL (0 is off) and KINVAULT_INCLUDE are the twins of --full and --include', async () => {
    const src = join(work, 'annas');
    const full = await runKinvault(anna, ['backup', src, '--json'], { KINVAULT_FULL: '1' });
    expect(lastJson<Summary>(full.stdout).files_changed).toBe(1);
    // "0" means off, as a person expects (commander alone would turn it on).
    const off = await runKinvault(anna, ['backup', src, '--json'], { KINVAULT_FULL: '0' });
    expect(lastJson<Summary>(off.stdout).files_changed).toBe(0);
    await writeFile(join(src, 'second.txt'), 'two');
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    const target = join(work, 'include-env');
    const r = await runKinvault(anna, ['restore', 'latest', '--target', target], {
      KINVAULT_INCLUDE: `${src.slice(1)}/second.txt`,
    });
    expect(r.code).toBe(0);
    expect(await readdir(join(target, src))).toEqual(['second.txt']);
  });
});
