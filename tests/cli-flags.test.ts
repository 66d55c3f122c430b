/**
 * Every flag of both commands has an environment twin (shown by --help as "env: …"), so
 * that a scheduler or a service file can set anything a person can type. The commands
 * are found by walking the help texts, so a new command cannot be left out.
 */
import { describe, expect, it } from 'vitest';
import { runKinvaultd, type RunResult } from './support/kinvaultd.js';
import { runKinvault } from './support/kinvault.js';

/** The options of one --help text that name no environment variable. */
function withoutTwin(help: string): string[] {
  const options = help.split(/\nOptions:\n/)[1]?.split(/\n\n|\nCommands:/)[0] ?? '';
  // An option starts at two spaces and a dash; its description may wrap onto more lines.
  const entries = options.split(/\n(?= {2}-)/).map((e) => e.replace(/\s+/g, ' ').trim());
  return entries
    .filter((e) => e.startsWith('-') && !/^-h, --help/.test(e) && !/env: [A-Z_]+\)/.test(e))
    .map((e) => e.split(' ').find((w) => w.startsWith('--'))!);
}

/** The subcommands a --help text lists (an entry starts at two spaces and a letter). */
function subcommands(help: string): string[] {
  const section = help.split(/\nCommands:\n/)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)]
    .map((m) => m[1]!)
    .filter((name) => name !== 'help');
}

/** Every command under the program, each with its --help text (a level at a time). */
async function everyCommand(
  run: (args: string[]) => Promise<RunResult>,
): Promise<{ path: string[]; help: string }[]> {
  const found: { path: string[]; help: string }[] = [];
  for (let level: string[][] = [[]]; level.length > 0;) {
    const next: string[][] = [];
    // A few at a time: each is a Node.js process loading the whole command.
    for (let i = 0; i < level.length; i += 4) {
      const batch = level.slice(i, i + 4);
      const helps = await Promise.all(batch.map((path) => run([...path, '--help'])));
      batch.forEach((path, j) => {
        expect(helps[j]!.code, `${path.join(' ')} --help`).toBe(0);
        found.push({ path, help: helps[j]!.stdout });
        next.push(...subcommands(helps[j]!.stdout).map((s) => [...path, s]));
      });
    }
    level = next;
  }
  return found;
}

function missingTwins(program: string, commands: { path: string[]; help: string }[]): string[] {
  // The one exception: --recovery-code's twin is KINVAULT_RECOVERY_CODE holding the code.
  const exceptions = ['kinvault setup --recovery-code'];
  return commands
    .flatMap(({ path, help }) =>
      withoutTwin(help).map((flag) => [program, ...path, flag].join(' ')),
    )
    .filter((f) => !exceptions.includes(f));
}

const names = (commands: { path: string[] }[]) => commands.map((c) => c.path.join(' '));

describe('environment twins', () => {
  it('every kinvault flag has one', async () => {
    const commands = await everyCommand((args) => runKinvault('/nonexistent', args));
    expect(names(commands)).toEqual(
      expect.arrayContaining(['setup', 'passphrase', 'backup', 'snapshots', 'ls', 'restore']),
    );
    expect(missingTwins('kinvault', commands)).toEqual([]);
  });

  it('every kinvaultd flag has one, the target, where and jobs commands included', async () => {
    const commands = await everyCommand(runKinvaultd);
    // The walk reached them all (so that the check below cannot pass by seeing nothing).
    expect(names(commands)).toEqual(
      expect.arrayContaining([
        'init',
        'start',
        'status',
        'check',
        'keys list',
        'keys restore',
        'device add',
        'device list',
        'device revoke',
        'target add',
        'target list',
        'target test',
        'target set',
        'target auth',
        'target remove',
        'where',
        'jobs list',
        'jobs retry',
      ]),
    );
    expect(missingTwins('kinvaultd', commands)).toEqual([]);
  });
});
