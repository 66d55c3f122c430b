/** kinvaultd check: re-hash every pack on the NAS and find the missing ones. */
import { formatBytes, formatDuration, plural, progressLine } from '@kinvault/protocol';
import type { BadPack } from '../services/check.service.js';
import { KinvaultError } from '@kinvault/protocol';
import { withContext } from './context.js';
import { STAGING_ATTEMPTS } from '../app/compose.js';

export async function runCheck(opts: {
  dataDir: string;
  json?: boolean;
  dropReplaced?: boolean;
  tier?: string;
}): Promise<void> {
  const tier = opts.tier ?? 'nas';
  if (tier === 'staging') return runStagingCheck(opts);
  if (tier !== 'nas')
    throw new KinvaultError('INVALID_ARGUMENT', `--tier ${tier}: give nas or staging.`);
  const started = Date.now();
  const bar = progressLine(process.stderr.isTTY === true && !opts.json);
  const result = await withContext(opts.dataDir, (ctx) =>
    ctx.checks.checkNas({
      dropReplaced: opts.dropReplaced === true,
      onProgress: (p) =>
        bar.update(
          () =>
            `checking packs on the NAS: ${p.packs}/${p.totalPacks} · ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}`,
        ),
    }),
  );
  bar.done();
  const atRisk = [...result.damaged, ...result.missing].filter((p) => !p.replaced);
  if (atRisk.length > 0) process.exitCode = 1;
  const seconds = (Date.now() - started) / 1000;
  if (opts.json) {
    console.log(JSON.stringify({ tier: 'nas', ...result, duration_s: seconds }));
    return;
  }
  console.log(
    `Checked ${plural(result.packs, 'pack')} on the NAS (${formatBytes(result.bytes)}) in ${formatDuration(seconds)}: ${result.ok} intact, ${result.damaged.length} damaged, ${result.missing.length} missing.`,
  );
  const line = (state: string, p: BadPack) =>
    console.log(
      `  ${state}  ${p.pack}  ${p.replaced ? '(all of it stored again since: nothing is at risk)' : `(${p.detail ?? 'see the log'})`}`,
    );
  for (const d of result.damaged) line('damaged', d);
  for (const m of result.missing) line('missing', m);
  if (result.retired.length > 0)
    console.log(
      `${plural(result.retired.length, 'missing pack')} had all ${result.retired.length === 1 ? 'its' : 'their'} contents stored again by later backups and left the index.`,
    );
  if (result.quarantined.length > 0)
    console.log(
      `${plural(result.quarantined.length, 'damaged pack')} stored again elsewhere moved to ${opts.dataDir}/quarantine/ (delete them when you like).`,
    );
  if (atRisk.length > 0)
    console.log(`What these packs hold is no longer counted as stored. Run a backup on every
device: each one stores again whatever it still has of it, and the snapshots that
needed it become restorable again. A damaged pack stays where it is (its other blobs are
still read); once stored again, "kinvaultd check --drop-replaced" sets it aside.`);
}

/** kinvaultd check --tier staging: every copy at the staging targets, without the NAS. */
async function runStagingCheck(opts: { dataDir: string; json?: boolean }): Promise<void> {
  const r = await withContext(opts.dataDir, async (ctx) => {
    const result = await ctx.staging.verify();
    // What no longer counts is placed again by the coordinator's workers.
    if (result.bad.length > 0 || result.badObjects.length > 0)
      await ctx.queue.enqueue(
        ctx.db.sql,
        'stage.scan',
        'all',
        {},
        { maxAttempts: STAGING_ATTEMPTS },
      );
    return result;
  });
  if (r.bad.length > 0 || r.badObjects.length > 0 || r.unreachable.length > 0) process.exitCode = 1;
  if (opts.json) return console.log(JSON.stringify({ tier: 'staging', ...r }));
  console.log(
    `Checked ${r.packs} pack cop${r.packs === 1 ? 'y' : 'ies'} at ${plural(r.targets, 'staging target')}: ${r.ok} intact, ${r.bad.length} missing or changed; and ${r.objects} copies of manifests, key files and catalogs: ${r.badObjects.length} missing or changed.`,
  );
  for (const b of r.bad) console.log(`  ${b.state}  ${b.pack}  at ${b.target} (${b.detail})`);
  for (const b of r.badObjects) console.log(`  ${b.state}  ${b.key}  at ${b.target} (${b.detail})`);
  for (const u of r.unreachable)
    console.log(`  target ${u.target} could not be checked: ${u.error}`);
  if (r.bad.length > 0 || r.badObjects.length > 0)
    console.log('Those copies no longer count; the coordinator copies them again by itself.');
}
