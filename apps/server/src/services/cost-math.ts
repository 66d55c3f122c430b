/**
 * The arithmetic of what Deep Archive costs (design §22): pure functions of byte and
 * object counts and a price table (prices.ts). Dollars are unrounded numbers; rounding
 * is for printing.
 */
import { DEFAULT_PART_SIZE, partSizeFor } from '@kinvault/stores';
import { PRICES, type Prices } from './prices.js';

export type RestoreTier = 'bulk' | 'standard';
export const RESTORE_TIERS: readonly RestoreTier[] = ['bulk', 'standard'];

const DAY_MS = 86_400_000;

const gb = (bytes: number, p: Prices) => bytes / p.gbBytes;

/** $/month of one object's bytes and 32 KB of index at the Deep Archive rate (the part the 180 days apply to). */
export function archiveRateMonthly(bytes: number, p: Prices = PRICES): number {
  return gb(bytes + p.deepArchive.overheadAtArchiveRate, p) * p.deepArchive.storagePerGbMonth;
}

/** $/month of one object in Deep Archive: its bytes and its 40 KB of overhead (32 KB + 8 KB at S3 Standard). */
export function objectMonthly(bytes: number, p: Prices = PRICES): number {
  return (
    archiveRateMonthly(bytes, p) +
    gb(p.deepArchive.overheadAtStandardRate, p) * p.standardStoragePerGbMonth
  );
}

/** $/month of the 40 KB per object alone, for `objects` objects. */
export function overheadMonthly(objects: number, p: Prices = PRICES): number {
  return objects * objectMonthly(0, p);
}

/**
 * PUT-class requests that upload one object of `bytes` (as the S3 store does it): one
 * PutObject up to a part; else CreateMultipartUpload, one UploadPart per part (parts
 * grow past `partSize` so that there are at most 10,000) and CompleteMultipartUpload.
 */
export function putRequests(bytes: number, partSize: number = DEFAULT_PART_SIZE): number {
  if (bytes <= partSize) return 1;
  return Math.ceil(bytes / partSizeFor(partSize, bytes)) + 2;
}

/** The same, from the parts an upload recorded (one part: a single PutObject). */
export const putRequestsOfParts = (parts: number) => (parts <= 1 ? 1 : parts + 2);

export const requestsCost = (requests: number, per1000: number) => (requests * per1000) / 1000;

export interface RestoreCost {
  tier: RestoreTier;
  /** Typically done within this many hours. */
  hours: number;
  /** The thaw: per GB of every object restored (whole objects, whatever is read after). */
  retrieval: number;
  /** One RestoreObject request per object. */
  requests: number;
  /** The GETs that read the thawed copies. */
  gets: number;
  /** Downloading it all to the NAS (the first 100 GB of a month free). */
  transfer: number;
  total: number;
}

/** What restoring `bytes` in `objects` objects with `gets` GETs costs at a tier, in one month. */
export function restoreCost(
  tier: RestoreTier,
  what: { bytes: number; objects: number; gets: number },
  p: Prices = PRICES,
): RestoreCost {
  const r = p.retrieval[tier];
  const retrieval = gb(what.bytes, p) * r.perGb;
  const requests = requestsCost(what.objects, r.per1000Requests);
  const gets = requestsCost(what.gets, p.deepArchive.getPer1000);
  const transfer =
    Math.max(0, gb(what.bytes, p) - p.transferOut.freeGbPerMonth) * p.transferOut.perGb;
  return {
    tier,
    hours: r.hours,
    retrieval,
    requests,
    gets,
    transfer,
    total: retrieval + requests + gets + transfer,
  };
}

export interface EarlyDeletion {
  /** Objects younger than the minimum. */
  objects: number;
  /** What deleting them all now would still be billed: the rest of their minimum days, pro rata. */
  dollars: number;
}

/**
 * The early-deletion liability under Deep Archive's 180-day minimum: for each object
 * stored less than 180 days, the remaining days at its Deep Archive rate (a billed
 * month being `monthDays` days). The 8 KB at S3 Standard has no minimum.
 */
export function earlyDeletion(
  objects: readonly { bytes: number; since: Date }[],
  now: Date,
  p: Prices = PRICES,
): EarlyDeletion {
  let count = 0;
  let dollars = 0;
  for (const o of objects) {
    const remaining = p.deepArchive.minimumDays - (now.getTime() - o.since.getTime()) / DAY_MS;
    if (remaining <= 0) continue;
    count++;
    dollars += (remaining / p.monthDays) * archiveRateMonthly(o.bytes, p);
  }
  return { objects: count, dollars };
}

/** One way of putting a library in Deep Archive. */
export interface Plan {
  objects: number;
  putRequests: number;
  putCost: number;
  /** The 40 KB per object, a month. */
  overheadMonthly: number;
  /** Bytes and overhead, a month. */
  storageMonthly: number;
  /** The uploads and twelve months of storage. */
  firstYear: number;
  restore: Record<RestoreTier, RestoreCost>;
}

export interface ModelInput {
  /** The library's bytes (what gets stored; deduplication would make it less). */
  size: number;
  files: number;
  volumeSize: number;
  partSize: number;
}

function plan(
  size: number,
  objects: { count: number; bytes: number }[],
  partSize: number,
  p: Prices,
): Plan {
  const count = objects.reduce((n, o) => n + o.count, 0);
  const puts = objects.reduce((n, o) => n + o.count * putRequests(o.bytes, partSize), 0);
  const putCost = requestsCost(puts, p.deepArchive.putPer1000);
  const overhead = overheadMonthly(count, p);
  const storageMonthly = gb(size, p) * p.deepArchive.storagePerGbMonth + overhead;
  const restore = (tier: RestoreTier) =>
    restoreCost(tier, { bytes: size, objects: count, gets: count }, p);
  return {
    objects: count,
    putRequests: puts,
    putCost,
    overheadMonthly: overhead,
    storageMonthly,
    firstYear: putCost + 12 * storageMonthly,
    restore: { bulk: restore('bulk'), standard: restore('standard') },
  };
}

/**
 * A library not backed up yet, as one object per file (every file taken as the
 * average size) and as volumes of `volumeSize` (the last one holding the rest).
 * Each object is read back with one GET after its thaw.
 */
export function modelLibrary(
  m: ModelInput,
  p: Prices = PRICES,
): { perFile: Plan; perVolume: Plan; partsPerVolume: number; volumePartSize: number } {
  const full = Math.floor(m.size / m.volumeSize);
  const rest = m.size - full * m.volumeSize;
  const volumes = [{ count: full, bytes: m.volumeSize }];
  if (rest > 0) volumes.push({ count: 1, bytes: rest });
  return {
    perFile: plan(m.size, [{ count: m.files, bytes: m.size / m.files }], m.partSize, p),
    perVolume: plan(m.size, volumes, m.partSize, p),
    partsPerVolume: putRequests(m.volumeSize, m.partSize) - (m.volumeSize > m.partSize ? 2 : 0),
    volumePartSize: partSizeFor(m.partSize, m.volumeSize),
  };
}
