/**
 * Every flag of both commands has an environment twin (shown by --help as "env: …"), so
 * that a scheduler or a service file can set anything a person can type.
 */
import { describe, expect, it } from 'vitest';
import { runKinvaultd } from './support/kinvaultd.js';
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

// The one exception: --recovery-code's twin is KINVAULT_RECOVERY_CODE holding the code.
const EXCEPTIONS = ['--recovery-code'];

describe('environment twins', () => {
  it('every kinvault flag has one', async () => {
    const missing: string[] = [];
    for (const cmd of [
      [],
      ['setup'],
      ['passphrase'],
      ['backup'],
      ['snapshots'],
      ['ls'],
      ['restore'],
    ]) {
      const r = await runKinvault('/nonexistent', [...cmd, '--help']);
      expect(r.code).toBe(0);
      for (const flag of withoutTwin(r.stdout))
        if (!EXCEPTIONS.includes(flag)) missing.push(`kinvault ${cmd.join(' ')} ${flag}`);
    }
    expect(missing).toEqual([]);
  });

  it('every kinvaultd flag has one', async () => {
    const missing: string[] = [];
    for (const cmd of [
      ['init'],
      ['start'],
      ['status'],
      ['check'],
      ['keys', 'list'],
      ['keys', 'restore'],
      ['device', 'add'],
      ['device', 'list'],
      ['device', 'revoke'],
      ['target', 'auth'],
    ]) {
      const r = await runKinvaultd([...cmd, '--help']);
      expect(r.code).toBe(0);
      for (const flag of withoutTwin(r.stdout)) missing.push(`kinvaultd ${cmd.join(' ')} ${flag}`);
    }
    expect(missing).toEqual([]);
  });
});
