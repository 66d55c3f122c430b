/** kinvaultd status: devices, last backup per device, snapshots, packs, bytes, dedup. */
import { withContext, type Context } from './context.js';
import { stateText } from './volumes.js';
import type { VolumeRow } from '../repositories/volumes.repository.js';

function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export async function runStatus(opts: { dataDir: string; json?: boolean }): Promise<void> {
  const s = await withContext(opts.dataDir, async (ctx) => {
    const [devices, perDevice, totals, snapshots, problems] = await Promise.all([
      ctx.services.devices.list(),
      ctx.services.snapshots.perDevice(),
      ctx.services.packs.totals(),
      ctx.services.snapshots.list(),
      ctx.services.packs.problems(),
    ]);
    const offsite = await ctx.staging.offsite();
    const volumes = await ctx.volumes.list();
    const byName = new Map(perDevice.map((d) => [d.device, d]));
    const logical = perDevice.reduce((sum, d) => sum + d.bytes, 0);
    return {
      devices: devices.map((d) => {
        const p = byName.get(d.name);
        return {
          name: d.name,
          state: d.state,
          lastSeenAt: d.lastSeenAt,
          snapshots: p?.snapshots ?? 0,
          lastBackupAt: p?.last?.toISOString() ?? null,
          files: p?.files ?? 0,
          bytes: p?.bytes ?? 0,
        };
      }),
      snapshots: snapshots.length,
      /** Registered packs; `availablePacks` of them have a copy in good state. */
      packs: totals.packs,
      availablePacks: totals.available,
      blobs: totals.blobs,
      /** Bytes of the available packs. */
      storedBytes: totals.bytes,
      damagedPacks: problems.filter((p) => p.state === 'damaged'),
      missingPacks: problems.filter((p) => p.state === 'missing'),
      /** Sum of each device's latest snapshot, as reported by the agents. */
      protectedBytes: logical,
      dedupRatio: totals.bytes > 0 ? Math.round((logical / totals.bytes) * 100) / 100 : null,
      /** Staging targets, and the packs that lack the off-site copies the policy asks for. */
      offsite,
      /** ISO volumes at archive targets, with how far those under way are. */
      volumes: volumeSummary(volumes),
    };
  });
  if (opts.json) {
    console.log(JSON.stringify(s));
    return;
  }
  console.log(
    `${s.devices.length} devices, ${s.snapshots} snapshots, ${s.packs} packs (${bytes(s.storedBytes)} stored for ${bytes(s.protectedBytes)} protected${s.dedupRatio ? `, dedup ${s.dedupRatio}x` : ''})`,
  );
  printDamage([...s.damagedPacks, ...s.missingPacks]);
  printOffsite(s.offsite);
  printVolumes(s.volumes);
  const w = Math.max(6, ...s.devices.map((d) => d.name.length));
  if (s.devices.length)
    console.log(
      `${'DEVICE'.padEnd(w)}  STATE                   LAST BACKUP               FILES      SIZE`,
    );
  for (const d of s.devices) {
    console.log(
      `${d.name.padEnd(w)}  ${d.state.padEnd(22)}  ${(d.lastBackupAt ?? 'never').padEnd(24)}  ${String(d.files).padStart(8)}  ${bytes(d.bytes).padStart(8)}`,
    );
  }
}

/** The damaged and missing packs: a warning for those whose contents are at risk. */
function printDamage(
  bad: { state: string; pack: string; since: string; snapshots: number; replaced: boolean }[],
): void {
  const atRisk = bad.filter((p) => !p.replaced);
  if (atRisk.length > 0) {
    console.log(
      `WARNING: ${atRisk.length} pack${atRisk.length === 1 ? ' is' : 's are'} damaged or missing on the NAS; what they hold is not counted as stored.`,
    );
    for (const p of atRisk.slice(0, 20))
      console.log(
        `  ${p.state.padEnd(7)}  ${p.pack}  since ${p.since}  (${p.snapshots} snapshot${p.snapshots === 1 ? '' : 's'} need it)`,
      );
    if (atRisk.length > 20) console.log(`  … and ${atRisk.length - 20} more (--json lists all)`);
    console.log(
      '  Run a backup on every device to store their contents again; "kinvaultd check" re-checks every pack.',
    );
  }
  const replaced = bad.filter((p) => p.replaced);
  if (replaced.length > 0)
    console.log(
      `${replaced.length} damaged pack${replaced.length === 1 ? ' was' : 's were'} stored again by later backups (nothing is at risk); "kinvaultd check --drop-replaced" sets ${replaced.length === 1 ? 'it' : 'them'} aside.`,
    );
}

/** Where the off-site copies stand: each target, and what is not yet protected. */
function printOffsite(o: Awaited<ReturnType<Context['staging']['offsite']>>): void {
  if (o.targets.length === 0) {
    console.log(
      'No off-site copies: every pack is on the NAS alone. "kinvaultd target add" adds a USB disk or folder.',
    );
    return;
  }
  for (const t of o.targets) {
    const use = t.quotaBytes
      ? `${bytes(t.usedBytes)} of ${bytes(t.quotaBytes)}`
      : bytes(t.usedBytes);
    const state = t.failingSince
      ? `FAILING since ${t.failingSince}: ${t.lastError ?? ''}`
      : t.fullSince
        ? `FULL since ${t.fullSince} (the provider says: ${t.fullReason ?? 'no room'})`
        : t.quotaFull
          ? `FULL (its ${bytes(t.quotaBytes!)} quota cannot take ${t.nextPackBytes === null ? 'more' : `the next pack, ${bytes(t.nextPackBytes)}`})`
          : 'ok';
    const traffic = `${t.traffic.requests} requests, ${bytes(t.traffic.bytesSent)} sent, ${bytes(t.traffic.bytesReceived)} read`;
    const objects = `${t.packs} packs and ${t.objects - t.packs} other objects`;
    console.log(`target ${t.name} (${t.role}): ${use} in ${objects}, ${state}; ${traffic}`);
  }
  if (o.unprotectedPacks > 0)
    console.log(
      `${o.unprotectedPacks} pack(s) do not yet have ${o.copiesRequired} off-site cop${o.copiesRequired === 1 ? 'y' : 'ies'} (waiting since ${o.unprotectedSince}). ` +
        (o.targets.every((t) => t.full)
          ? 'Every target is full: backups go on to the NAS alone. Raise a quota ("kinvaultd target set NAME --quota SIZE"), make room at a target or add one ("kinvaultd target add").'
          : o.targets.every((t) => t.full || t.failingSince)
            ? 'Every target is full or failing (above): backups go on to the NAS alone. Bring the failing ones back, raise a quota ("kinvaultd target set NAME --quota SIZE"), make room at a target or add one ("kinvaultd target add").'
            : 'They are being copied.'),
    );
  else
    console.log(
      `Every pack has ${o.copiesRequired} verified off-site cop${o.copiesRequired === 1 ? 'y' : 'ies'}.`,
    );
}

/** Per archive target: its volumes verified and their bytes, and those under way. */
function volumeSummary(list: VolumeRow[]) {
  const targets = [...new Set(list.map((v) => v.target))];
  return targets.map((target) => {
    const mine = list.filter((v) => v.target === target);
    const done = mine.filter((v) => v.state === 'verified');
    return {
      target,
      verified: done.length,
      verifiedBytes: done.reduce((n, v) => n + v.size, 0),
      underway: mine
        .filter((v) => v.state !== 'verified')
        .map((v) => ({ id: v.id, state: stateText(v), lastError: v.lastError })),
    };
  });
}

function printVolumes(summary: ReturnType<typeof volumeSummary>): void {
  for (const t of summary) {
    const underway = t.underway.map((v) => `volume ${v.id} ${v.state}`).join(', ');
    console.log(
      `archive ${t.target}: ${t.verified} volume${t.verified === 1 ? '' : 's'} verified (${bytes(t.verifiedBytes)})${underway ? `; ${underway}` : ''}`,
    );
    for (const v of t.underway)
      if (v.lastError) console.log(`  volume ${v.id}: last error: ${v.lastError}`);
  }
}
