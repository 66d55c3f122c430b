/**
 * End to end: the household's passphrase and recovery code, as a family uses them. A new
 * passphrase must be strong whichever way it arrives; a forgotten one is replaced with the
 * printed recovery code (from the environment, a file or a prompt); a change needs the
 * current passphrase and reaches every device.
 */

/**
 * Runs kinvault on a terminal (a pseudo-terminal from util-linux's script), answering
 * each prompt as it appears: `answers` pairs what the output must show next with what to
 * type then. Resolves with everything shown and the exit code.
 */
function onTerminal(
  args: string[],
  answers: [RegExp, string][],
): Promise<{ code: number | null; output: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('KINVAULT_')),
  );
  const command = [process.execPath, kinvaultPath, ...args]
    .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
    .join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { env });
  let output = '';
  let seen = 0; // how much of the output the answers have used
  const answer = () => {
    const next = answers[0];
    if (!next) return;
    const m = next[0].exec(output.slice(seen));
    if (!m) return;
    seen += m.index + m[0].length;
    answers.shift();
    child.stdin.write(`${next[1]}\r`);
    answer();
  };
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString('utf8');
    answer();
  });
  const timer = setTimeout(() => child.kill(), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      child.stdin.end();
      resolve({ code, output });
    }),
  );
}
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initCoordinator,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
  removeTempDirs,
} from './support/kinvaultd.js';
import { kinvaultPath, lastJson, runKinvault } from './support/kinvault.js';

describe('passphrase and recovery code (built commands)', () => {
  let c: Coordinator;
  let work: string;
  /** A fresh enrollment code for a new device. */
  const code = async (name: string) =>
    (
      JSON.parse(
        (await runKinvaultd(['device', 'add', name, '--data-dir', c.dataDir, '--json'])).stdout,
      ) as { code: string }
    ).code;
  const state = (name: string) => join(work, name);

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-keys-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-keys-work-');
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  let recoveryCode = '';

  it('refuses a weak new passphrase from the environment or a file, naming where it came from', async () => {
    const first = await code('anna');
    const weakEnv = await runKinvault(state('anna'), ['setup', first], {
      KINVAULT_PASSPHRASE: 'x',
    });
    expect(weakEnv.code).toBe(2);
    expect(weakEnv.stderr).toMatch(/new passphrase in KINVAULT_PASSPHRASE is too easy to guess/);
    const file = join(work, 'weak.txt');
    await writeFile(file, 'password1\n');
    const weakFile = await runKinvault(state('anna'), ['setup', first, '--passphrase-file', file]);
    expect(weakFile.code).toBe(2);
    expect(weakFile.stderr).toMatch(new RegExp(`new passphrase in ${file} is too easy to guess`));
    // The code was used once; the device keeps its token, so a strong passphrase now works.
    const ok = await runKinvault(state('anna'), ['setup', first, '--json']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const r = lastJson<{ household: string; recoveryCode: string }>(ok.stdout);
    expect(r.household).toBe('created');
    recoveryCode = r.recoveryCode;
  });

  it('a forgotten passphrase: the wrong one names the recovery code, which unlocks and sets a new one', async () => {
    const bob = await code('bob');
    const wrong = await runKinvault(state('bob'), ['setup', bob], {
      KINVAULT_PASSPHRASE: 'not the passphrase at all',
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/passphrase is wrong.*kinvault setup CODE --recovery-code/);
    const typo = await runKinvault(state('bob'), ['setup', bob, '--recovery-code'], {
      KINVAULT_RECOVERY_CODE: recoveryCode.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')),
    });
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/recovery code/i);
    const recovered = await runKinvault(state('bob'), ['setup', bob, '--json'], {
      KINVAULT_RECOVERY_CODE: recoveryCode.toLowerCase(),
      KINVAULT_PASSPHRASE: 'plum orbit velvet harbour',
    });
    expect(recovered.stderr).toBe('');
    expect(lastJson(recovered.stdout)).toMatchObject({ household: 'recovered' });
    // The next device joins with the new passphrase; the old one no longer opens.
    const carol = await code('carol');
    expect(
      (await runKinvault(state('carol'), ['setup', carol])).code, // the suite's passphrase
    ).toBe(2);
    const joined = await runKinvault(state('carol'), ['setup', carol, '--json'], {
      KINVAULT_PASSPHRASE: 'plum orbit velvet harbour',
    });
    expect(lastJson(joined.stdout)).toMatchObject({ household: 'joined' });
    // The coordinator kept the replaced key file.
    const versions = JSON.parse(
      (await runKinvaultd(['keys', '--data-dir', c.dataDir, '--json'])).stdout,
    ) as { replacedBy: string }[];
    expect(versions.map((v) => v.replacedBy)).toEqual(['bob']);
  });

  it('kinvault passphrase: needs the current one, refuses a weak new one, and reaches every device', async () => {
    const env = { KINVAULT_PASSPHRASE: 'plum orbit velvet harbour' };
    const wrong = await runKinvault(state('anna'), ['passphrase'], {
      KINVAULT_PASSPHRASE: 'guess',
      KINVAULT_NEW_PASSPHRASE: 'lantern quiver mosaic tulip',
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/passphrase is wrong/);
    const weak = await runKinvault(state('anna'), ['passphrase'], {
      ...env,
      KINVAULT_NEW_PASSPHRASE: 'abc',
    });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/KINVAULT_NEW_PASSPHRASE is too easy to guess/);
    const changed = await runKinvault(state('anna'), ['passphrase'], {
      ...env,
      KINVAULT_NEW_PASSPHRASE: 'lantern quiver mosaic tulip',
    });
    expect(changed.stderr).toBe('');
    expect(changed.code).toBe(0);
    expect(changed.stdout).toMatch(/still open with the old passphrase/);
    const dave = await code('dave');
    const joined = await runKinvault(state('dave'), ['setup', dave, '--json'], {
      KINVAULT_PASSPHRASE: 'lantern quiver mosaic tulip',
    });
    expect(lastJson(joined.stdout)).toMatchObject({ household: 'joined' });
  });

  it('the recovery code from --recovery-code-file unlocks and sets the new passphrase from --passphrase-file', async () => {
    const erin = await code('erin');
    const missing = await runKinvault(state('erin'), [
      'setup',
      erin,
      '--recovery-code-file',
      join(work, 'no-such-file'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Cannot read the recovery code file .*no-such-file/);
    const codeFile = join(work, 'recovery.txt');
    await writeFile(codeFile, `${recoveryCode}\n`, { mode: 0o600 });
    const newFile = join(work, 'new-passphrase.txt');
    await writeFile(newFile, 'meadow copper lantern violet\n', { mode: 0o600 });
    const recovered = await runKinvault(state('erin'), [
      'setup',
      erin,
      '--recovery-code-file',
      codeFile,
      '--passphrase-file',
      newFile,
      '--json',
    ]);
    expect(recovered.stderr).toBe('');
    expect(recovered.code).toBe(0);
    expect(lastJson(recovered.stdout)).toMatchObject({ household: 'recovered' });
    expect(recovered.stdout).not.toContain(recoveryCode);
    const next = await code('fred');
    const joined = await runKinvault(state('fred'), ['setup', next, '--json'], {
      KINVAULT_PASSPHRASE: 'meadow copper lantern violet',
    });
    expect(lastJson(joined.stdout)).toMatchObject({ household: 'joined' });
  });

  it('at a terminal, asks for the recovery code, then for a new passphrase until one is strong, twice', async () => {
    const gina = await code('gina');
    const strong = 'walnut ember glacier sonnet';
    const r = await onTerminal(
      ['--state-dir', state('gina'), 'setup', gina, '--recovery-code'],
      [
        [/Recovery code: /, recoveryCode],
        [/New household passphrase: /, 'password1'],
        [/too easy to guess[^]*New household passphrase: /, strong],
        [/Repeat it: /, strong],
      ],
    );
    expect(r.output).toMatch(
      /The recovery code unlocked the household, and its new passphrase is set/,
    );
    expect(r.code).toBe(0);
    // Typed with echo off: neither the code nor a passphrase shows.
    expect(r.output).not.toContain(recoveryCode);
    expect(r.output).not.toContain(strong);
    expect(r.output).not.toContain('password1');
    const next = await code('hugo');
    const joined = await runKinvault(state('hugo'), ['setup', next, '--json'], {
      KINVAULT_PASSPHRASE: strong,
    });
    expect(lastJson(joined.stdout)).toMatchObject({ household: 'joined' });
  });
});
