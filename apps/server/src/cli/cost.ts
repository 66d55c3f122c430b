/**
 * kinvaultd cost [--model]: what the copies cost from real counts, or what a library
 * not backed up yet would cost per file and per volume (design §22). --model needs no
 * data directory.
 */
import { formatBytes, KinvaultError } from '@kinvault/protocol';
import { DEFAULT_PART_SIZE } from '@kinvault/stores';
import { withContext } from './context.js';
import { parseSize } from './sizes.js';
import { costRepository } from '../repositories/cost.repository.js';
import { modelLibrary, type Plan, type RestoreCost } from '../services/cost-math.js';
import {
  costService,
  type ArchiveCost,
  type CostReport,
  type Pricing,
} from '../services/cost.service.js';
import { PRICES } from '../services/prices.js';
import { DEFAULT_VOLUME_SIZE } from '../services/volumes.service.js';

export interface CostOptions {
  dataDir?: string;
  json?: boolean;
  model?: boolean;
  size?: string;
  files?: string;
  volumeSize?: string;
  partSize?: string;
}

const usage = (message: string) => new KinvaultError('INVALID_ARGUMENT', message);

/** Dollars for a family: cents above a dollar, up to four decimals below, two digits below that. */
export function usd(x: number): string {
  if (x === 0) return '$0.00';
  if (x >= 1) return `$${x.toFixed(2)}`;
  if (x >= 0.0001) return `$${x.toFixed(4).replace(/(\.\d\d\d*?)0+$/, '$1')}`;
  if (x >= 0.000001) return `$${Number(x.toPrecision(2)).toFixed(6).replace(/0+$/, '')}`;
  return 'under $0.000001';
}

const count = (n: number) => n.toLocaleString('en-US');
const pricesLine = () =>
  `AWS list prices in ${PRICES.region} of ${PRICES.writtenOn}, checked against secondary sources: apps/server/src/services/prices.ts`;

/** A part size as S3 URLs give it: 32 MiB. */
const partText = (n: number) => (n % 2 ** 20 === 0 ? `${n / 2 ** 20} MiB` : formatBytes(n));

export async function runCost(opts: CostOptions): Promise<void> {
  const modelFlags = [opts.size, opts.files, opts.volumeSize, opts.partSize].some(
    (f) => f !== undefined,
  );
  if (opts.model) return runModel(opts);
  if (modelFlags) throw usage('--size, --files, --volume-size and --part-size go with --model.');
  if (!opts.dataDir)
    throw usage(
      'kinvaultd cost needs --data-dir (or KINVAULT_DATA_DIR); "kinvaultd cost --model --size 250GB --files 55000" needs none.',
    );
  const report = await withContext(opts.dataDir, (ctx) => {
    const sql = ctx.db.sql;
    return costService({
      nas: () => costRepository(sql).nas(),
      targets: () => ctx.targets.list(),
      volumes: () => ctx.volumes.list(),
    }).report();
  });
  if (opts.json) return console.log(JSON.stringify(report));
  for (const line of reportText(report)) console.log(line);
}

function pricingText(p: Pricing): string {
  if (p.kind === 'deep-archive') return `S3 Glacier Deep Archive${p.why ? ` (${p.why})` : ''}`;
  return p.why;
}

function restoreText(r: RestoreCost): string {
  const name = r.tier === 'bulk' ? 'Bulk' : 'Standard';
  return `${name} (within ${r.hours} hours): ${usd(r.total)} = thaw ${usd(r.retrieval)} + restore requests ${usd(r.requests)} + GETs ${usd(r.gets)} + download ${usd(r.transfer)}`;
}

function archiveText(a: ArchiveCost): string[] {
  const lines = [
    `  ${a.target}: ${pricingText(a.pricing)}`,
    `    ${a.volumes} volume(s) stored, ${formatBytes(a.bytes)}` +
      (a.underWay.volumes > 0
        ? `; ${a.underWay.volumes} more under way (${formatBytes(a.underWay.bytes)})`
        : ''),
  ];
  const requests = `${count(a.requests.put)} PUT-class and ${count(a.requests.head)} HEAD requests for the volumes`;
  if (!a.priced) return [...lines, `    ${requests} so far; ${a.storeCalls} other store calls`];
  const p = a.priced;
  return [
    ...lines,
    `    storage: ${usd(p.storageMonthly)} a month (of which ${usd(p.overheadMonthly)} is the 40 KB per volume)`,
    `    requests so far: ${requests}, ${usd(p.requestsCost)}; besides, ${a.storeCalls} store calls counted by "target list" (a multipart upload counts once there)`,
    `    a full restore of everything here, in one month:`,
    `      ${restoreText(p.restore.bulk)}`,
    `      ${restoreText(p.restore.standard)}`,
    p.earlyDeletion.objects === 0
      ? `    early deletion: nothing (every volume is older than ${PRICES.deepArchive.minimumDays} days)`
      : `    early deletion: ${p.earlyDeletion.objects} volume(s) younger than ${PRICES.deepArchive.minimumDays} days; deleting them now would still cost ${usd(p.earlyDeletion.dollars)}`,
  ];
}

export function reportText(r: CostReport): string[] {
  const lines = [
    `What the copies cost (${pricesLine()}).`,
    '',
    `NAS: ${formatBytes(r.nas.bytes)} in ${count(r.nas.packs)} packs (your own disk: nothing to pay here).`,
  ];
  lines.push(r.staging.length === 0 ? 'Staging: no staging targets.' : 'Staging:');
  for (const s of r.staging)
    lines.push(
      `  ${s.target}: ${formatBytes(s.bytes)} in ${count(s.objects)} objects; ${pricingText(s.pricing)}; ${count(s.storeCalls)} store calls so far`,
    );
  lines.push(r.archive.length === 0 ? 'Archive: no archive targets.' : 'Archive:');
  for (const a of r.archive) lines.push(...archiveText(a));
  if (r.archive.some((a) => a.priced)) {
    const t = r.total;
    lines.push(
      '',
      `In all: ${usd(t.storageMonthly)} a month; ${usd(t.requestsCost)} of requests so far; a full restore ${usd(t.restore.bulk)} (Bulk) or ${usd(t.restore.standard)} (Standard); ${usd(t.earlyDeletion.dollars)} if every volume were deleted today.`,
    );
  }
  return lines;
}

function parseFiles(text: string): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw usage(`--files ${text}: give how many files the library has, as in --files 55000.`);
  return n;
}

async function runModel(opts: CostOptions): Promise<void> {
  if (opts.size === undefined || opts.files === undefined)
    throw usage(
      'kinvaultd cost --model needs --size and --files, as in --size 250GB --files 55000.',
    );
  const input = {
    size: parseSize(opts.size, '--size'),
    files: parseFiles(opts.files),
    volumeSize:
      opts.volumeSize === undefined
        ? DEFAULT_VOLUME_SIZE
        : parseSize(opts.volumeSize, '--volume-size'),
    partSize:
      opts.partSize === undefined ? DEFAULT_PART_SIZE : parseSize(opts.partSize, '--part-size'),
  };
  const m = modelLibrary(input);
  if (opts.json)
    return console.log(
      JSON.stringify({
        prices: { writtenOn: PRICES.writtenOn, region: PRICES.region },
        ...input,
        ...m,
      }),
    );
  for (const line of modelText(input, m)) console.log(line);
}

export function modelText(
  input: { size: number; files: number; volumeSize: number; partSize: number },
  m: ReturnType<typeof modelLibrary>,
): string[] {
  const rows: [string, (p: Plan) => string][] = [
    ['objects', (p) => count(p.objects)],
    ['upload requests (PUT)', (p) => count(p.putRequests)],
    ['  their cost, once', (p) => usd(p.putCost)],
    ['40 KB per object, a month', (p) => usd(p.overheadMonthly)],
    ['storage, a month', (p) => usd(p.storageMonthly)],
    ['first year (uploads + 12 months)', (p) => usd(p.firstYear)],
    ['restore requests (one per object)', (p) => count(p.objects)],
    ['full restore, Bulk (48 hours)', (p) => usd(p.restore.bulk.total - p.restore.bulk.transfer)],
    [
      'full restore, Standard (12 hours)',
      (p) => usd(p.restore.standard.total - p.restore.standard.transfer),
    ],
    ['  and downloading it all', (p) => usd(p.restore.bulk.transfer)],
  ];
  const head = ['', 'one object per file', `${formatBytes(input.volumeSize)} volumes`];
  const table = [head, ...rows.map(([name, f]) => [name, f(m.perFile), f(m.perVolume)])];
  const widths = [0, 1, 2].map((i) => Math.max(...table.map((r) => r[i]!.length)));
  const perVolumePuts = m.partsPerVolume > 1 ? m.partsPerVolume + 2 : 1;
  return [
    `A library of ${formatBytes(input.size)} in ${count(input.files)} files, in S3 Glacier Deep Archive`,
    `(${pricesLine()}):`,
    '',
    ...table.map((r) =>
      [r[0]!.padEnd(widths[0]!), r[1]!.padStart(widths[1]!), r[2]!.padStart(widths[2]!)].join(
        '   ',
      ),
    ),
    '',
    `Each volume goes up as ${m.partsPerVolume > 1 ? `${count(m.partsPerVolume)} parts of ${partText(m.volumePartSize)} plus create and complete: ${count(perVolumePuts)} PUT requests` : 'one PutObject'}; each file as one PutObject.`,
    `A full restore thaws every object and reads it with one GET; downloading is the same either way (the first ${PRICES.transferOut.freeGbPerMonth} GB of a month free).`,
    `Every object is billed for at least ${PRICES.deepArchive.minimumDays} days, even if deleted sooner.`,
  ];
}
