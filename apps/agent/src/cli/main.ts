#!/usr/bin/env node
/**
 * kinvault — the Kinvault agent. Each command parses flags (each with an environment
 * twin), calls one service and maps errors to exit codes: 0 ok, 1 failure, 2 bad input
 * or usage, 3 done in part: a backup committed without some files, or a restore that could
 * not write some files (each is named).
 */
import { Command, CommanderError, Option } from 'commander';
import {
  formatBytes,
  formatDuration,
  honourFalseEnvFlags,
  keepHeapHeadroom,
  plural,
  progressLine,
} from '@kinvault/protocol';
import type { RepositoryKeys } from '@kinvault/format';
import { backup } from '../backup/backup.service.js';
import {
  existingSecret,
  newPassphrase,
  newPassphraseSource,
  passphraseSource,
  recoveryCodeSource,
} from '../passphrase.js';
import { changePassphrase } from '../services/passphrase.service.js';
import { addSecret } from '../secrets.js';
import { reportFailure } from './failure.js';
import type { RemoteRepository } from '../repository.js';
import { openSession, type SessionOptions } from '../session.js';
import { FAILURE_ADVICE, list, restore } from '../restore.service.js';
import { setup } from '../services/setup.service.js';
import { defaultStateDir, statePaths } from '../state.js';
import { DEFAULT_RETRY_FOR_S } from '../transport/retry.js';

const program = new Command('kinvault')
  .description('The Kinvault agent: backs up this computer to the household coordinator.')
  .addOption(
    new Option('--state-dir <dir>', 'where this device keeps its keys and state')
      .env('KINVAULT_STATE_DIR')
      .default(defaultStateDir()),
  )
  .addOption(
    new Option('--debug', 'on failure, also print where it happened (secrets removed)').env(
      'KINVAULT_DEBUG',
    ),
  )
  .exitOverride()
  .showHelpAfterError();

const json = () =>
  new Option('--json', 'print JSON (the last line of output is one JSON object)').env(
    'KINVAULT_JSON',
  );
const stateDir = () => program.opts<{ stateDir: string }>().stateDir;
const out = (value: unknown) => console.log(JSON.stringify(value));
/** A list flag's environment twin holds its values comma-separated. */
const listFromEnv = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** `long`: a restore, which rides out a coordinator restart once under way. */
async function withRepo<T>(
  use: (repo: RemoteRepository, keys: RepositoryKeys, device: string) => Promise<T>,
  opts: SessionOptions = {},
): Promise<T> {
  const session = await openSession(stateDir(), opts);
  try {
    return await use(session.repo, session.keys, session.state.device);
  } finally {
    session.close();
  }
}

/** --retry-for: how long a backup or restore rides out a coordinator that stopped answering. */
const retryFor = () =>
  new Option(
    '--retry-for <seconds>',
    'once under way, how long to keep trying when the coordinator stops answering (while it restarts, a network outage); 0 gives up at once',
  )
    .env('KINVAULT_RETRY_FOR')
    .default(DEFAULT_RETRY_FOR_S)
    .argParser((v) => {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 86_400)
        throw new CommanderError(
          2,
          'kinvault.retryFor',
          `--retry-for must be a number of seconds from 0 to 86400, got "${v}"`,
        );
      return n;
    });

const passphraseFile = () =>
  new Option('--passphrase-file <file>', 'read the household passphrase from a file').env(
    'KINVAULT_PASSPHRASE_FILE',
  );

program
  .command('setup <code>')
  .description('enroll this device with a code from "kinvaultd device add"')
  .addOption(passphraseFile())
  .addOption(
    new Option(
      '--recovery-code',
      'unlock with the printed recovery code instead of the passphrase, then set a new passphrase',
    ),
  )
  .addOption(
    new Option('--recovery-code-file <file>', 'read the recovery code from a file').env(
      'KINVAULT_RECOVERY_CODE_FILE',
    ),
  )
  .addOption(json())
  .action(
    async (
      code: string,
      opts: {
        passphraseFile?: string;
        recoveryCode?: boolean;
        recoveryCodeFile?: string;
        json?: boolean;
      },
    ) => {
      const useRecovery =
        opts.recoveryCode === true ||
        opts.recoveryCodeFile !== undefined ||
        Boolean(process.env.KINVAULT_RECOVERY_CODE);
      const r = await setup(code, stateDir(), {
        passphrase: () => existingSecret(passphraseSource(opts.passphraseFile)),
        newPassphrase: () => newPassphrase(passphraseSource(opts.passphraseFile)),
        ...(useRecovery && {
          recoveryCode: () => existingSecret(recoveryCodeSource(opts.recoveryCodeFile)),
        }),
      });
      if (opts.json) return out(r);
      console.log(`This device is enrolled as "${r.device}" with the coordinator at ${r.url}.`);
      if (r.household === 'recovered')
        console.log(
          'The recovery code unlocked the household, and its new passphrase is set. Copies of the old passphrase key file already off-site still open with the old passphrase.',
        );
      if (r.household === 'recovered-keeping-passphrase')
        console.log(
          'The recovery code unlocked the household. Its passphrase cannot be changed: the household was created by an older Kinvault, before key files could be replaced safely.',
        );
      if (r.recoveryCode) {
        console.log(`
You created the household's keys. This is its RECOVERY CODE — print it or write it down
and keep it somewhere safe. It is the only way back in if the passphrase is forgotten,
and it is shown only now:

    ${r.recoveryCode}
`);
      }
      console.log(`The master key is kept in ${statePaths(stateDir()).masterKey} (mode 0600).
Next: kinvault backup ~/Pictures`);
    },
  );

program
  .command('passphrase')
  .description("change the household's passphrase (asks for the current one first)")
  .addOption(passphraseFile())
  .addOption(
    new Option('--new-passphrase-file <file>', 'read the new passphrase from a file').env(
      'KINVAULT_NEW_PASSPHRASE_FILE',
    ),
  )
  .action(async (opts: { passphraseFile?: string; newPassphraseFile?: string }) => {
    const session = await openSession(stateDir());
    try {
      await changePassphrase(
        session.api,
        session.masterKey,
        await existingSecret(passphraseSource(opts.passphraseFile)),
        () => newPassphrase(newPassphraseSource(opts.newPassphraseFile)),
      );
    } finally {
      session.close();
    }
    console.log(`The household's passphrase is changed: every device of the household uses the new one
to set up or recover. Copies of the old passphrase key file that are already off-site
(volumes, staging, relatives' homes) still open with the old passphrase.`);
  });

program
  .command('backup <paths...>')
  .description('back up files and folders')
  .addOption(
    new Option('--exclude <glob...>', 'skip matching names (no "/") or absolute paths')
      .env('KINVAULT_EXCLUDE')
      .default([]),
  )
  .addOption(
    new Option('--threads <n>', 'worker threads for hashing and encryption')
      .env('KINVAULT_THREADS')
      .argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 64)
          throw new CommanderError(2, 'kinvault.threads', `--threads must be 1 to 64, got "${v}"`);
        return n;
      }),
  )
  .addOption(
    new Option(
      '--full',
      'read every file again, even unchanged ones (to check that they read back as stored)',
    ).env('KINVAULT_FULL'),
  )
  .addOption(retryFor())
  .addOption(json())
  .action(
    async (
      paths: string[],
      opts: {
        exclude: string[] | string;
        threads?: number;
        full?: boolean;
        retryFor: number;
        json?: boolean;
      },
    ) => {
      keepHeapHeadroom();
      const excludes = typeof opts.exclude === 'string' ? listFromEnv(opts.exclude) : opts.exclude;
      const bar = progressLine(process.stderr.isTTY === true && !opts.json);
      const summary = await backup({
        paths,
        excludes,
        stateDir: stateDir(),
        threads: opts.threads,
        full: opts.full === true,
        retryForS: opts.retryFor,
        onProgress: (p) =>
          bar.update(() => {
            const secs = (Date.now() - p.startedAt) / 1000;
            const rate = p.bytesRead / Math.max(secs, 0.001);
            const eta = (p.totals.changedBytes - p.bytesRead) / Math.max(rate, 1);
            return `${p.filesDone}/${p.totals.files} files · ${formatBytes(p.bytesRead)}/${formatBytes(p.totals.changedBytes)} read · ${formatBytes(rate)}/s · ETA ${formatDuration(eta)} · ${formatBytes(p.bytesUploaded)} uploaded`;
          }),
      });
      bar.done();
      for (const e of summary.errors.slice(0, 50))
        console.error(`could not back up ${e.path}: ${e.message}`);
      if (summary.errors.length > 50) console.error(`… and ${summary.errors.length - 50} more`);
      if (opts.json) out(summary);
      else {
        console.log(`Snapshot ${summary.snapshot.slice(0, 12)}${summary.partial ? ' (PARTIAL: some files could not be read)' : ''}
  ${summary.files_seen} files (${summary.files_changed} new or changed), ${formatBytes(summary.bytes_seen)}
  read ${formatBytes(summary.bytes_read)}, uploaded ${formatBytes(summary.bytes_uploaded)} in ${summary.packs_uploaded} packs, ${formatDuration(summary.duration_s)}${
    summary.files_resent > 0
      ? `
  ${plural(summary.files_resent, 'unchanged file')} read and stored again: the coordinator had lost ${summary.files_resent === 1 ? 'its' : 'their'} data`
      : ''
  }`);
      }
      if (summary.partial) process.exitCode = 3;
    },
  );

/** --device: whose snapshots "latest" (or an id) means; this device's by default. */
const deviceOption = () =>
  new Option(
    '--device <name>',
    'another device\'s snapshots ("latest" is this device\'s newest otherwise)',
  ).env('KINVAULT_DEVICE');

/** The snapshot a user means: "latest" is this device's unless --device names another. */
async function resolveSnapshot(
  repo: RemoteRepository,
  ref: string,
  thisDevice: string,
  device?: string,
): Promise<string> {
  return (await repo.findSnapshot(ref, device ?? (ref === 'latest' ? thisDevice : undefined))).id;
}

program
  .command('snapshots')
  .description("list the household's snapshots (every device's, or --device NAME's)")
  .addOption(new Option('--device <name>', "only this device's snapshots").env('KINVAULT_DEVICE'))
  .addOption(json())
  .action(async (opts: { json?: boolean; device?: string }) => {
    const all = (await withRepo((repo) => repo.snapshots())).filter(
      (s) => opts.device === undefined || s.device === opts.device,
    );
    const rows = all.map((s) => ({
      id: s.id,
      device: s.device,
      time: s.createdAt,
      paths: s.snapshot.paths,
      files: s.snapshot.stats.files,
      bytes: s.snapshot.stats.bytes,
      partial: s.snapshot.partial,
    }));
    if (opts.json) return out(rows);
    if (rows.length === 0) return console.log('No snapshots yet. Run "kinvault backup PATH".');
    for (const r of rows)
      console.log(
        `${r.id.slice(0, 12)}  ${r.time}  ${r.device.padEnd(16)} ${String(r.files).padStart(8)} files ${formatBytes(r.bytes).padStart(9)}  ${r.paths.join(' ')}${r.partial ? '  (partial)' : ''}`,
      );
  });

program
  .command('ls <snapshot> [path]')
  .description(
    'list a directory of a snapshot ("latest" or an id prefix; PATH like home/anna/Pictures)',
  )
  .addOption(deviceOption())
  .addOption(json())
  .action(
    async (ref: string, path: string | undefined, opts: { json?: boolean; device?: string }) => {
      const r = await withRepo(async (repo, _keys, me) =>
        list(repo, await resolveSnapshot(repo, ref, me, opts.device), path ?? ''),
      );
      if (opts.json) {
        return out(
          r.entries.map((n) => ({
            name: n.name,
            kind: n.kind,
            mode: n.mode,
            mtime: new Date(Number(n.mtimeNs / 1_000_000n)).toISOString(),
            size: n.kind === 'file' ? n.size : null,
            target: n.kind === 'symlink' ? n.target : null,
          })),
        );
      }
      for (const n of r.entries) {
        const kind = n.kind === 'dir' ? 'd' : n.kind === 'symlink' ? 'l' : '-';
        const size = n.kind === 'file' ? formatBytes(n.size) : '';
        console.log(
          `${kind}${n.mode.toString(8).padStart(4, '0')}  ${size.padStart(9)}  ${new Date(Number(n.mtimeNs / 1_000_000n)).toISOString()}  ${n.name}${n.kind === 'dir' ? '/' : ''}${n.kind === 'symlink' ? ` -> ${n.target}` : ''}`,
        );
      }
    },
  );

program
  .command('restore <snapshot>')
  .description('restore a snapshot, or parts of it, under a directory')
  .addOption(
    new Option('--target <dir>', 'where to restore')
      .env('KINVAULT_RESTORE_TARGET')
      .makeOptionMandatory(),
  )
  .addOption(
    new Option(
      '--include <path...>',
      'restore only these paths (like home/anna/Pictures/2024; in the environment, comma-separated)',
    )
      .env('KINVAULT_INCLUDE')
      .default([]),
  )
  .addOption(deviceOption())
  .addOption(
    new Option(
      '--hard-links',
      'restore files that were hard links as hard links (not when the backup held file-system snapshots or several file systems: they look alike)',
    ).env('KINVAULT_HARD_LINKS'),
  )
  .addOption(retryFor())
  .addOption(json())
  .action(
    async (
      ref: string,
      opts: {
        target: string;
        include: string[] | string;
        json?: boolean;
        device?: string;
        hardLinks?: boolean;
        retryFor: number;
      },
    ) => {
      const includes = typeof opts.include === 'string' ? listFromEnv(opts.include) : opts.include;
      keepHeapHeadroom();
      const bar = progressLine(process.stderr.isTTY === true && !opts.json);
      const r = await withRepo(
        async (repo, keys, me) =>
          restore(repo, keys, await resolveSnapshot(repo, ref, me, opts.device), opts.target, {
            includes,
            hardLinks: opts.hardLinks === true,
            onDamage: async (d) => void (await repo.reportDamage(d)),
            onProgress: (s) =>
              bar.update(
                () =>
                  `${plural(s.files_restored + s.files_skipped, 'file')} · ${formatBytes(s.bytes_written)} written`,
              ),
          }),
        { long: true, retryForS: opts.retryFor },
      );
      bar.done();
      if (opts.json) out(r);
      else
        console.log(
          `Restored snapshot ${r.snapshot.slice(0, 12)} into ${opts.target}: ${plural(r.files_restored, 'file')} written (${formatBytes(r.bytes_written)}), ${r.files_skipped} already correct, ${plural(r.dirs, 'folder')}, ${plural(r.symlinks, 'link')}, in ${formatDuration(r.duration_s)}${r.failed.length ? `; ${r.failed.length} could not be restored (below)` : ''}.`,
        );
      if (r.failed.length === 0) return;
      console.error(`kinvault: ${plural(r.failed.length, 'file')} could not be restored:`);
      for (const f of r.failed.slice(0, 50)) console.error(`  ${f.path}: ${f.reason}`);
      if (r.failed.length > 50) console.error(`  … and ${r.failed.length - 50} more`);
      console.error(FAILURE_ADVICE);
      process.exitCode = 3;
    },
  );

/** Set from the command's own flags just before it runs. */
const ending = { json: process.env.KINVAULT_JSON !== undefined, debug: false };
program.hook('preAction', (_program, command) => {
  for (let c: Command | null = command; c; c = c.parent) honourFalseEnvFlags(c);
  ending.json = command.opts<{ json?: boolean }>().json === true;
  ending.debug = program.opts<{ debug?: boolean }>().debug === true;
});
const fail = (error: unknown) => {
  process.exitCode = reportFailure(error, ending);
};
// Whatever goes wrong, even outside a command's own error handling, ends the same way.
process.on('uncaughtException', (error) => {
  fail(error);
  process.exit(process.exitCode ?? 1);
});
process.on('unhandledRejection', (error) => {
  fail(error);
  process.exit(process.exitCode ?? 1);
});
for (const name of ['KINVAULT_PASSPHRASE', 'KINVAULT_NEW_PASSPHRASE', 'KINVAULT_RECOVERY_CODE'])
  addSecret(process.env[name]);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Our own argument checks (commander has printed its own usage errors already).
  if (error instanceof CommanderError && error.code.startsWith('kinvault.'))
    console.error(`kinvault: ${error.message}`);
  fail(error);
}
process.exit(process.exitCode ?? 0);
