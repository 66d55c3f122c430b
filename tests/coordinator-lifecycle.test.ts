/**
 * End to end, the coordinator's life on the NAS: an init that fails or is killed part-way
 * keeps nothing and can simply be run again; each start owns its embedded PostgreSQL and
 * a stop stops it; a server orphaned by kill -9 is shut down by the next start; commands
 * run beside a coordinator or beside each other share its server without stopping it.
 * The built kinvaultd, as root (the embedded database then runs as "postgres").
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../apps/server/src/config.js';
import { databaseOf } from './support/files.js';
import { openDatabase } from '../apps/server/src/db/database.js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  freePort,
  kinvaultdPath,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
} from './support/kinvaultd.js';

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Pids of the PostgreSQL processes running on this data directory. */
async function postgresOn(dataDir: string): Promise<number[]> {
  const pgDir = join(dataDir, 'postgres');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('postgres') && cmdline.split('\0').includes(pgDir))
      pids.push(Number(entry));
  }
  return pids;
}

async function postmasterPid(dataDir: string): Promise<number> {
  const text = await readFile(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8');
  return Number(text.split('\n')[0]);
}

/** Running (a zombie, dead and waiting for its new parent to reap it, is not). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat !== null && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

const init = (dataDir: string, port: number, ...more: string[]) =>
  runKinvaultd(['init', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, ...more]);

describe('coordinator lifecycle (built kinvaultd, embedded PostgreSQL)', () => {
  const running: Coordinator[] = [];

  afterAll(async () => {
    for (const c of running)
      if (c.process.exitCode === null && c.process.signalCode === null) await c.stop();
    await removeTempDirs();
  });

  it('an init that fails part-way keeps nothing, and the same init then succeeds', async () => {
    const base = await traversableTempDir('kinvaultd-init-');
    const port = await freePort();
    const nowhere = `postgres://kinvault:s3cret-pw@127.0.0.1:${await freePort()}/kinvault`;
    for (const dataDir of [join(base, 'new'), join(base, 'premade')]) {
      const premade = dataDir.endsWith('premade');
      if (premade) await mkdir(dataDir);
      // Fails after the TLS certificate and folders were made.
      const failed = await init(dataDir, port, '--database-url', nowhere);
      expect(failed.code).toBe(2);
      expect(failed.stderr).toMatch(
        /"kinvaultd init" did not finish: Cannot use the database at postgres:\/\/kinvault:\*\*\*@127\.0\.0\.1:\d+\/kinvault.*ECONNREFUSED.*Nothing was kept in/,
      );
      expect(failed.stderr).not.toContain('s3cret-pw');
      if (premade) expect(await readdir(dataDir)).toEqual([]);
      else expect(await exists(dataDir)).toBe(false);
      const ok = await init(dataDir, port);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(await readdir(dataDir)).toEqual(
        expect.arrayContaining(['config.json', 'tls', 'postgres', 'packs', 'uploads']),
      );
      expect(await readdir(dataDir)).not.toContain('.init-incomplete');
      expect(await postgresOn(dataDir)).toEqual([]);
    }
  }, 180_000);

  it('as root, an empty data directory of mode 0700 is made enterable for "postgres"; a parent it cannot enter fails before anything is written', async () => {
    expect(process.getuid?.()).toBe(0); // these tests run as root, here and in CI
    const base = await traversableTempDir('kinvaultd-init-mode-');
    const blocked = join(base, 'blocked');
    const dataDir = join(blocked, 'data');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await chmod(blocked, 0o700);
    await chmod(dataDir, 0o700);
    const port = await freePort();
    const refused = await init(dataDir, port);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`"postgres" user, which cannot enter ${blocked} (mode 700)`);
    expect(await readdir(dataDir)).toEqual([]);

    await chmod(blocked, 0o711);
    const ok = await init(dataDir, port);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o711);
    const c = await startCoordinator(dataDir, port);
    running.push(c);
    expect(await c.stop()).toBe(0);
  }, 180_000);

  it('an init killed part-way: start says to run init again, which cleans up (its database server too) and succeeds', async () => {
    const dataDir = join(await traversableTempDir('kinvaultd-init-kill-'), 'data');
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [kinvaultdPath, 'init', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`],
      { stdio: 'ignore' },
    );
    const exited = new Promise((r) => child.once('exit', r));
    // Killed while its database server runs.
    await waitFor('the database server of init', () =>
      exists(join(dataDir, 'postgres', 'postmaster.pid')),
    );
    child.kill('SIGKILL');
    await exited;
    expect(await exists(join(dataDir, 'config.json'))).toBe(false);
    const orphans = await postgresOn(dataDir);

    const start = await runKinvaultd(['start', '--data-dir', dataDir]);
    expect(start.code).toBe(2);
    expect(start.stderr).toContain(
      `"kinvaultd init" did not finish in ${dataDir}. Run "kinvaultd init --data-dir ${dataDir}" again`,
    );

    const again = await init(dataDir, port);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('did not finish');
    for (const pid of orphans) expect(await alive(pid)).toBe(false);
    const c = await startCoordinator(dataDir, port);
    running.push(c);
    expect(await c.stop()).toBe(0);
    expect(await postgresOn(dataDir)).toEqual([]);
  }, 180_000);

  it('each start owns its database server: kill -9 leaves an orphan that the next start shuts down; commands share it; a stop stops it', async () => {
    const dataDir = join(await traversableTempDir('kinvaultd-owner-'), 'data');
    const port = await freePort();
    expect((await init(dataDir, port)).code).toBe(0);

    const first = await startCoordinator(dataDir, port);
    running.push(first);
    const orphan = await postmasterPid(dataDir);
    expect(await first.stop('SIGKILL')).toBe(null);
    expect(await alive(orphan)).toBe(true); // re-parented, still running

    const second = await startCoordinator(dataDir, port);
    running.push(second);
    expect(second.log()).toContain(`An orphaned database server (pid ${orphan}) was running`);
    expect(second.log()).toContain(`The orphaned database server (pid ${orphan}) was shut down.`);
    expect(await alive(orphan)).toBe(false);
    const own = await postmasterPid(dataDir);
    expect(own).not.toBe(orphan);
    // No deprecation warnings on start (fastify's FSTDEP023 was one).
    expect(first.log() + second.log()).not.toMatch(/DeprecationWarning|FSTDEP|Warning:/);

    // A second coordinator on the same directory is refused, and stops nothing.
    const twice = await runKinvaultd(['start', '--data-dir', dataDir]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/Another "kinvaultd start" \(pid \d+\) is running/);

    // Commands share the coordinator's server and leave it running.
    const added = await runKinvaultd(['device', 'add', 'anna-laptop', '--data-dir', dataDir]);
    expect(added.code).toBe(0);
    const list = await runKinvaultd(['device', 'list', '--json', '--data-dir', dataDir]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: 'anna-laptop' })]);
    expect(await postmasterPid(dataDir)).toBe(own);
    expect(await alive(own)).toBe(true);
    expect((await runKinvaultd(['status', '--data-dir', dataDir])).code).toBe(0);

    // A long command (a check stuck reading a pack: a FIFO in its place) shares the
    // server; a coordinator that stops meanwhile leaves the server to it, and the next
    // start takes it over.
    const config = JSON.parse(await readFile(join(dataDir, 'config.json'), 'utf8')) as {
      database: { port: number; password: string };
    };
    const sql = await databaseOf(dataDir);
    const name = 'ab'.repeat(32);
    await sql`insert into packs (name, size) values (${Buffer.from(name, 'hex')}, 10)`;
    await sql`insert into pack_locations (pack, location, state)
              values (${Buffer.from(name, 'hex')}, 'nas', 'ok')`;
    await sql`insert into blobs (id, type, pack)
              values (${Buffer.alloc(32, 7)}, 1, ${Buffer.from(name, 'hex')})`;
    await sql.end();
    // The coordinator's connections plan every statement for its own arguments: a plan
    // cached while the tables were nearly empty made dedup lookups quadratic.
    const url = `postgres://kinvault:${config.database.password}@127.0.0.1:${config.database.port}/kinvault`;
    const loaded = await loadConfig(dataDir);
    for (const [cfg, opts] of [
      [loaded, { role: 'command' as const }],
      [{ ...loaded, database: { kind: 'url' as const, url } }, {}],
    ] as const) {
      const db = await openDatabase(dataDir, cfg, opts);
      const shown = await db.sql<{ plan_cache_mode: string }[]>`show plan_cache_mode`;
      await db.close();
      expect(shown[0]?.plan_cache_mode).toBe('force_custom_plan');
    }
    const fifo = join(dataDir, 'packs', 'ab', name);
    await mkdir(join(dataDir, 'packs', 'ab'), { recursive: true });
    execFileSync('mkfifo', [fifo]);
    const check = spawn(
      process.execPath,
      [kinvaultdPath, 'check', '--data-dir', dataDir, '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let checkOut = '';
    check.stdout.on('data', (d) => (checkOut += d));
    check.stderr.on('data', (d) => (checkOut += d));
    const checked = new Promise<number | null>((r) => check.once('exit', (code) => r(code)));
    await waitFor(
      'the check to connect',
      async () =>
        (await runKinvaultd(['status', '--data-dir', dataDir])).code === 0 && (await exists(fifo)),
    );
    await new Promise((r) => setTimeout(r, 1000)); // it is now blocked on the FIFO
    expect(await second.stop('SIGTERM')).toBe(0);
    expect(second.log()).toMatch(/Left the database server running for kinvaultd \(pid \d+\)/);
    expect(await alive(own)).toBe(true);
    const third = await startCoordinator(dataDir, port);
    running.push(third);
    expect(third.log()).toContain(`Took over the database server (pid ${own})`);
    expect((await runKinvaultd(['device', 'list', '--data-dir', dataDir])).code).toBe(0);
    // The check ends (the "pack" is read: it does not hash to its name) and leaves the
    // server to the coordinator.
    const writer = await open(fifo, 'w');
    await writer.write('0123456789');
    await writer.close();
    expect(await checked, checkOut).toBe(1);
    expect(JSON.parse(checkOut.trim().split('\n').pop()!)).toMatchObject({
      damaged: [expect.objectContaining({ pack: name })],
    });
    expect(await alive(own)).toBe(true);
    expect((await runKinvaultd(['device', 'list', '--data-dir', dataDir])).code).toBe(0);
    expect(await third.stop()).toBe(0);
    expect(await postgresOn(dataDir)).toEqual([]);
  }, 180_000);

  it('commands run at the same time with no coordinator share one server and leave none running', async () => {
    const dataDir = join(await traversableTempDir('kinvaultd-share-'), 'data');
    const port = await freePort();
    expect((await init(dataDir, port)).code).toBe(0);
    const results = await Promise.all([
      runKinvaultd(['device', 'add', 'anna-laptop', '--data-dir', dataDir]),
      runKinvaultd(['device', 'add', 'bob-laptop', '--data-dir', dataDir]),
      runKinvaultd(['device', 'add', 'carl-laptop', '--data-dir', dataDir]),
      runKinvaultd(['status', '--data-dir', dataDir]),
    ]);
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });
    const list = await runKinvaultd(['device', 'list', '--json', '--data-dir', dataDir]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((d) => d.name).sort()).toEqual([
      'anna-laptop',
      'bob-laptop',
      'carl-laptop',
    ]);
    expect(await postgresOn(dataDir)).toEqual([]);
  }, 180_000);
});
