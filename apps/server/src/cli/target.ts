/** kinvaultd target add|list|test|remove: the places off the NAS that hold copies. */
import { withContext } from './context.js';
import { formatBytes } from '@kinvault/protocol';
import { parseSize } from './sizes.js';
import type { TargetRow } from '../repositories/targets.repository.js';
import { DEFAULT_VOLUME_SIZE } from '../services/volumes.service.js';

interface Common {
  dataDir: string;
  json?: boolean;
}

const shown = (t: TargetRow) => ({
  name: t.name,
  url: t.url,
  role: t.role,
  usedBytes: t.usedBytes,
  quotaBytes: t.quotaBytes,
  ...(t.role === 'archive' ? { volumeSize: t.volumeSize ?? DEFAULT_VOLUME_SIZE } : {}),
  objects: t.objects,
  packs: t.packs,
  lastSuccessAt: t.lastSuccessAt?.toISOString() ?? null,
  lastError: t.failingSince ? t.lastError : null,
  failingSince: t.failingSince?.toISOString() ?? null,
  /** The provider said it has no room (a configured quota reached shows in usedBytes). */
  fullSince: t.fullSince?.toISOString() ?? null,
  traffic: t.traffic,
});

export async function runTargetAdd(
  name: string,
  url: string,
  opts: Common & { role: string; quota?: string; volumeSize?: string; allowSameDisk?: boolean },
): Promise<void> {
  const quotaBytes = opts.quota === undefined ? null : parseSize(opts.quota, '--quota');
  const volumeSize =
    opts.volumeSize === undefined ? null : parseSize(opts.volumeSize, '--volume-size');
  const r = await withContext(opts.dataDir, (ctx) =>
    ctx.targets.add({
      name,
      url,
      role: opts.role,
      quotaBytes,
      volumeSize,
      sameDisk: opts.allowSameDisk,
    }),
  );
  if (opts.json) return console.log(JSON.stringify({ added: name, ...r }));
  if ('needsAuthorisation' in r)
    return console.log(
      `Target "${name}" added. It still needs your Google account's permission: run "kinvaultd target auth ${name}" (docs/google-drive.md shows every step). Until then copies wait.`,
    );
  console.log(
    `Target "${name}" added (a probe object was written, read back, listed and deleted in ${r.ms} ms). ` +
      (opts.role === 'archive'
        ? `The coordinator packs the packs into ISO volumes of ${formatBytes(volumeSize ?? DEFAULT_VOLUME_SIZE)} and uploads each there once it is full ("kinvaultd volumes seal" seals one now); "kinvaultd volumes" shows them.`
        : `The coordinator copies packs, snapshots and key files there by itself; "kinvaultd target list" shows how far it is.`),
  );
}

export async function runTargetList(opts: Common): Promise<void> {
  const list = await withContext(opts.dataDir, (ctx) => ctx.targets.list());
  if (opts.json) return console.log(JSON.stringify(list.map(shown)));
  if (list.length === 0)
    return console.log(
      'No targets: every copy is on the NAS alone. "kinvaultd target add NAME URL --role staging" adds one.',
    );
  for (const t of list) {
    const use = t.quotaBytes
      ? `${formatBytes(t.usedBytes)} of ${formatBytes(t.quotaBytes)}`
      : formatBytes(t.usedBytes);
    console.log(`${t.name}  ${t.role}  ${t.url}`);
    console.log(
      `    ${use} in ${t.objects} objects; last success ${t.lastSuccessAt?.toISOString() ?? 'never'}; ${t.traffic.requests} requests, ${formatBytes(t.traffic.bytesSent)} sent, ${formatBytes(t.traffic.bytesReceived)} read`,
    );
    if (t.failingSince)
      console.log(`    FAILING since ${t.failingSince.toISOString()}: ${t.lastError ?? ''}`);
    else if (t.fullSince)
      console.log(
        `    FULL since ${t.fullSince.toISOString()} (the provider says: ${t.fullReason ?? 'no room'}); free space there or add a target`,
      );
  }
}

export async function runTargetTest(name: string, opts: Common): Promise<void> {
  const r = await withContext(opts.dataDir, (ctx) => ctx.targets.test(name));
  if (opts.json) return console.log(JSON.stringify({ target: name, ok: true, ...r }));
  const { usedBytes, quotaBytes } = r.usage;
  console.log(
    `Target "${name}" works: a probe was written, read back, listed and deleted in ${r.ms} ms.` +
      (quotaBytes
        ? ` The provider reports ${formatBytes(usedBytes ?? 0)} of ${formatBytes(quotaBytes)} used.`
        : ''),
  );
}

export async function runTargetSet(name: string, opts: Common & { quota: string }): Promise<void> {
  const quotaBytes = opts.quota === 'none' ? null : parseSize(opts.quota, '--quota');
  const t = await withContext(opts.dataDir, (ctx) => ctx.targets.setQuota(name, quotaBytes));
  if (opts.json) return console.log(JSON.stringify(shown(t)));
  console.log(
    `Target "${name}" now has ${quotaBytes === null ? 'no quota' : `a quota of ${formatBytes(quotaBytes)}`} (${formatBytes(t.usedBytes)} used).` +
      (t.quotaBytes !== null && t.usedBytes > t.quotaBytes
        ? ' It holds more than that already: nothing is deleted, and nothing more is stored there.'
        : ''),
  );
}

export async function runTargetRemove(
  name: string,
  opts: Common & { force?: boolean },
): Promise<void> {
  const r = await withContext(opts.dataDir, (ctx) => ctx.targets.remove(name, opts.force ?? false));
  if (opts.json) return console.log(JSON.stringify({ removed: name, ...r }));
  console.log(
    `Target "${name}" removed; what it holds was left there (delete it yourself if you want the space).` +
      (r.unprotected > 0
        ? ` ${r.unprotected} pack(s) are now on the NAS alone until another target has them.`
        : ''),
  );
}
