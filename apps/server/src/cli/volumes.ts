/** kinvaultd volumes [seal]: the ISO volumes at archive targets, and sealing one now. */
import { formatBytes, KinvaultError } from '@kinvault/protocol';
import { openContext, withContext, type Context } from './context.js';
import { STAGING_ATTEMPTS } from '../app/compose.js';
import type { VolumeRow } from '../repositories/volumes.repository.js';

interface Common {
  dataDir: string;
  json?: boolean;
}

const shown = (v: VolumeRow) => ({
  id: v.id,
  target: v.target,
  key: v.key,
  state: v.state,
  size: v.size,
  packs: v.packs,
  packBytes: v.packBytes,
  parts: v.parts,
  partsDone: v.partsDone,
  storageClass: v.storageClass,
  sha256: v.sha256,
  createdAt: v.createdAt.toISOString(),
  uploadedAt: v.uploadedAt?.toISOString() ?? null,
  verifiedAt: v.verifiedAt?.toISOString() ?? null,
  lastError: v.state === 'verified' ? null : v.lastError,
});

/** A volume's state in words: "uploading 37/160 parts", "verified". */
export function stateText(v: VolumeRow): string {
  if (v.state === 'uploading' && v.parts) return `uploading ${v.partsDone}/${v.parts} parts`;
  if (v.state === 'sealed') return 'building';
  return v.state;
}

export async function runVolumesList(opts: Common & { target?: string }): Promise<void> {
  const list = await withContext(opts.dataDir, (ctx) => ctx.volumes.list(opts.target));
  if (opts.json) return console.log(JSON.stringify(list.map(shown)));
  if (list.length === 0)
    return console.log(
      'No volumes yet. They are sealed once the packs waiting for an archive target fill one ("kinvaultd volumes seal" seals what there is now).',
    );
  for (const v of list) {
    console.log(
      `${String(v.id).padStart(6)}  ${v.target}  ${stateText(v)}  ${formatBytes(v.size)}  ${v.packs} packs  ${v.storageClass ?? ''}`.trimEnd(),
    );
    console.log(
      `        ${v.key}; sealed ${v.createdAt.toISOString()}; uploaded ${v.uploadedAt?.toISOString() ?? '-'}; verified ${v.verifiedAt?.toISOString() ?? '-'}`,
    );
    if (v.sha256) console.log(`        SHA-256 ${v.sha256}`);
    if (v.state !== 'verified' && v.lastError) console.log(`        last error: ${v.lastError}`);
  }
}

async function archiveTargets(ctx: Context, only?: string): Promise<string[]> {
  const names = (await ctx.targets.list()).filter((t) => t.role === 'archive').map((t) => t.name);
  if (only !== undefined && !names.includes(only))
    throw new KinvaultError('NOT_FOUND', `There is no archive target "${only}".`);
  if (names.length === 0)
    throw new KinvaultError(
      'FAILED_PRECONDITION',
      'There is no archive target: add one with "kinvaultd target add NAME URL --role archive".',
    );
  return only === undefined ? names : [only];
}

export async function runVolumesSeal(opts: Common & { target?: string }): Promise<void> {
  const sealed = await withContext(opts.dataDir, async (ctx) => {
    const ids: number[] = [];
    for (const name of await archiveTargets(ctx, opts.target)) {
      ids.push(...(await ctx.volumes.fill(name, { all: true })));
      if ((await ctx.volumes.list(name)).some((v) => v.state !== 'verified'))
        await ctx.queue.enqueue(
          ctx.db.sql,
          'volume.upload',
          name,
          {},
          {
            maxAttempts: STAGING_ATTEMPTS,
          },
        );
    }
    await ctx.queue.dueNow(['volume.upload']);
    return (await ctx.volumes.list()).filter((v) => ids.includes(v.id));
  });
  if (opts.json) return console.log(JSON.stringify({ sealed: sealed.map(shown) }));
  if (sealed.length === 0)
    return console.log('Nothing to seal: every pack on the NAS is in a volume already.');
  for (const v of sealed)
    console.log(
      `Volume ${v.id} sealed for "${v.target}": ${v.packs} packs, ${formatBytes(v.size)}. The coordinator uploads it ("kinvaultd start" must be running); "kinvaultd volumes" shows how far it is.`,
    );
  if (process.stdout.isTTY)
    await follow(
      opts.dataDir,
      sealed.map((v) => v.id),
    );
}

/** On a terminal: one line of progress until the volumes are verified (Ctrl-C stops watching). */
async function follow(dataDir: string, ids: number[]): Promise<void> {
  const ctx = await openContext(dataDir);
  try {
    for (;;) {
      const mine = (await ctx.volumes.list()).filter((v) => ids.includes(v.id));
      const line = mine.map((v) => `volume ${v.id}: ${stateText(v)}`).join(', ');
      process.stdout.write(`\r${line}\x1b[K`);
      if (mine.every((v) => v.state === 'verified')) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    process.stdout.write('\n');
  } finally {
    await ctx.db.close();
  }
}
