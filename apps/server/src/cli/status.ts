/** kinvaultd status: devices, last backup per device, snapshots, packs, bytes, dedup. */
import { withContext } from './context.js';

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
    const [devices, perDevice, totals, snapshots] = await Promise.all([
      ctx.services.devices.list(),
      ctx.services.snapshots.perDevice(),
      ctx.services.packs.totals(),
      ctx.services.snapshots.list(),
    ]);
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
      packs: totals.packs,
      blobs: totals.blobs,
      storedBytes: totals.bytes,
      /** Sum of each device's latest snapshot, as reported by the agents. */
      protectedBytes: logical,
      dedupRatio: totals.bytes > 0 ? Math.round((logical / totals.bytes) * 100) / 100 : null,
    };
  });
  if (opts.json) {
    console.log(JSON.stringify(s));
    return;
  }
  console.log(
    `${s.devices.length} devices, ${s.snapshots} snapshots, ${s.packs} packs (${bytes(s.storedBytes)} stored for ${bytes(s.protectedBytes)} protected${s.dedupRatio ? `, dedup ${s.dedupRatio}x` : ''})`,
  );
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
