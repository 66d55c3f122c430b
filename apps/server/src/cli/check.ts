/** kinvaultd check: re-hash every pack on the NAS and find the missing ones. */
import { formatBytes, formatDuration, plural, progressLine } from '@kinvault/protocol';
import type { BadPack } from '../services/check.service.js';
import { withContext } from './context.js';

export async function runCheck(opts: {
  dataDir: string;
  json?: boolean;
  dropReplaced?: boolean;
}): Promise<void> {
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
