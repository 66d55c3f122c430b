/** kinvaultd check: re-hash every pack on the NAS and find the missing ones. */
import { formatBytes, formatDuration, plural, progressLine } from '@kinvault/protocol';
import { withContext } from './context.js';

export async function runCheck(opts: { dataDir: string; json?: boolean }): Promise<void> {
  const started = Date.now();
  const bar = progressLine(process.stderr.isTTY === true && !opts.json);
  const result = await withContext(opts.dataDir, (ctx) =>
    ctx.checks.checkNas((p) =>
      bar.update(
        () =>
          `checking packs on the NAS: ${p.packs}/${p.totalPacks} · ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}`,
      ),
    ),
  );
  bar.done();
  const bad = result.damaged.length + result.missing.length;
  if (bad > 0) process.exitCode = 1;
  const seconds = (Date.now() - started) / 1000;
  if (opts.json) {
    console.log(JSON.stringify({ tier: 'nas', ...result, duration_s: seconds }));
    return;
  }
  console.log(
    `Checked ${plural(result.packs, 'pack')} on the NAS (${formatBytes(result.bytes)}) in ${formatDuration(seconds)}: ${result.ok} intact, ${result.damaged.length} damaged, ${result.missing.length} missing.`,
  );
  for (const d of result.damaged) console.log(`  damaged  ${d.pack}  (${d.detail})`);
  for (const m of result.missing) console.log(`  missing  ${m.pack}`);
  if (result.retired.length > 0)
    console.log(
      `${plural(result.retired.length, 'bad pack')} had all ${result.retired.length === 1 ? 'its' : 'their'} contents stored again by later backups and ${result.retired.length === 1 ? 'was' : 'were'} dropped.`,
    );
  if (bad > 0)
    console.log(`What they held is no longer counted as stored. Run a backup on every device:
each one stores again whatever it still has of it, and the snapshots that needed these
packs become restorable again. "kinvaultd status" lists the packs that are still bad.`);
}
