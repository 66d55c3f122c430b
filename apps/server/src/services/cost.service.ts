/**
 * `kinvaultd cost` from real counts (design §22).
 *
 * Contract:
 * - Bytes per tier: the packs on the NAS, what each staging target holds (packs and
 *   recovery objects), and each archive target's volumes (archived or verified: stored;
 *   sealed or uploading: under way).
 * - Only S3 targets in DEEP_ARCHIVE are priced (prices.ts, us-east-1; another region or
 *   an S3-compatible endpoint is priced the same, with a note). Folders and disks cost
 *   nothing here, nor does Google Drive (its free tier); S3 in another class is "not
 *   priced" rather than guessed.
 * - Requests so far at an archive target come from its volumes' recorded parts, as the
 *   design counts them (§21.3: HEAD, CreateMultipartUpload, a part each,
 *   CompleteMultipartUpload, HEAD; a one-part volume is one PutObject). `storeCalls` is
 *   the target's own counter (targets.requests): store calls made by staging, where a
 *   multipart upload counts once; volume uploads are not in it.
 * - A full restore thaws every stored volume (one restore request each), reads each
 *   pack with one ranged GET and each MANIFEST with one, and downloads it all (each
 *   archive target's restore counted as if it were the month's only download).
 * - Early deletion: what deleting every stored volume now would still be billed under
 *   the 180-day minimum, counted from its upload.
 */
import { parseS3Url } from '@kinvault/stores';
import type { TargetRow } from '../repositories/targets.repository.js';
import type { VolumeRow } from '../repositories/volumes.repository.js';
import {
  earlyDeletion,
  objectMonthly,
  overheadMonthly,
  putRequestsOfParts,
  requestsCost,
  restoreCost,
  type EarlyDeletion,
  type RestoreCost,
  type RestoreTier,
} from './cost-math.js';
import { PRICES, type Prices } from './prices.js';

/** How a target is priced. */
export type Pricing =
  | { kind: 'free'; why: string }
  | { kind: 'deep-archive'; why: string | null }
  | { kind: 'not-priced'; why: string };

export function pricingOf(url: string, p: Prices = PRICES): Pricing {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { kind: 'not-priced', why: 'its URL is not one Kinvault knows' };
  }
  if (parsed.protocol === 'file:')
    return { kind: 'free', why: 'a disk or folder of yours: nothing to pay here' };
  if (parsed.protocol === 'gdrive:')
    return { kind: 'free', why: "Google Drive's free tier (a paid plan is not counted here)" };
  if (parsed.protocol !== 's3:') return { kind: 'not-priced', why: 'not a kind of target priced' };
  let s3;
  try {
    s3 = parseS3Url(parsed);
  } catch {
    return { kind: 'not-priced', why: 'its URL does not parse' };
  }
  if (s3.storageClass !== 'DEEP_ARCHIVE')
    return {
      kind: 'not-priced',
      why: `S3 ${s3.storageClass} is not priced (the price table holds Deep Archive only)`,
    };
  const why = s3.endpoint
    ? `an S3-compatible service at ${s3.endpoint}, priced as AWS ${p.region} would be`
    : s3.region !== p.region
      ? `priced at ${p.region}'s rates; ${s3.region} may cost more`
      : null;
  return { kind: 'deep-archive', why };
}

export interface StagingCost {
  target: string;
  url: string;
  bytes: number;
  objects: number;
  pricing: Pricing;
  /** Store calls made there so far (one per put, get, head, list, delete; a multipart upload once). */
  storeCalls: number;
}

export interface ArchiveCost {
  target: string;
  url: string;
  pricing: Pricing;
  /** Archived or verified: stored there. */
  volumes: number;
  bytes: number;
  underWay: { volumes: number; bytes: number };
  storeCalls: number;
  /** From the volumes' recorded parts (design §21.3). */
  requests: { put: number; head: number };
  /** Null unless the target is priced. */
  priced: {
    storageMonthly: number;
    overheadMonthly: number;
    requestsCost: number;
    restore: Record<RestoreTier, RestoreCost>;
    earlyDeletion: EarlyDeletion;
  } | null;
}

export interface CostReport {
  at: string;
  prices: { writtenOn: string; region: string; note: string };
  nas: { packs: number; bytes: number };
  staging: StagingCost[];
  archive: ArchiveCost[];
  /** Over the priced archive targets. */
  total: {
    storageMonthly: number;
    requestsCost: number;
    restore: Record<RestoreTier, number>;
    earlyDeletion: EarlyDeletion;
  };
}

export interface CostFacts {
  nas: { packs: number; bytes: number };
  targets: TargetRow[];
  volumes: VolumeRow[];
}

const STORED = new Set(['archived', 'verified']);

/** The requests a volume's upload made, as far as it went. */
function volumeRequests(v: VolumeRow): { put: number; head: number } {
  if (STORED.has(v.state)) return { put: putRequestsOfParts(v.parts ?? 1), head: 2 };
  if (v.state === 'uploading' && v.partsDone > 0) return { put: v.partsDone + 1, head: 1 };
  return { put: 0, head: 0 };
}

function archiveCost(t: TargetRow, all: VolumeRow[], now: Date, p: Prices): ArchiveCost {
  const mine = all.filter((v) => v.target === t.name);
  const stored = mine.filter((v) => STORED.has(v.state));
  const waiting = mine.filter((v) => !STORED.has(v.state));
  const bytes = stored.reduce((n, v) => n + v.size, 0);
  const requests = mine
    .map(volumeRequests)
    .reduce((a, r) => ({ put: a.put + r.put, head: a.head + r.head }), { put: 0, head: 0 });
  const pricing = pricingOf(t.url, p);
  const restore = (tier: RestoreTier) =>
    restoreCost(
      tier,
      {
        bytes,
        objects: stored.length,
        gets: stored.reduce((n, v) => n + v.packs + 1, 0),
      },
      p,
    );
  return {
    target: t.name,
    url: t.url,
    pricing,
    volumes: stored.length,
    bytes,
    underWay: { volumes: waiting.length, bytes: waiting.reduce((n, v) => n + v.size, 0) },
    storeCalls: t.traffic.requests,
    requests,
    priced:
      pricing.kind !== 'deep-archive'
        ? null
        : {
            storageMonthly: stored.reduce((n, v) => n + objectMonthly(v.size, p), 0),
            overheadMonthly: overheadMonthly(stored.length, p),
            requestsCost:
              requestsCost(requests.put, p.deepArchive.putPer1000) +
              requestsCost(requests.head, p.deepArchive.getPer1000),
            restore: { bulk: restore('bulk'), standard: restore('standard') },
            earlyDeletion: earlyDeletion(
              stored.map((v) => ({ bytes: v.size, since: v.uploadedAt ?? v.createdAt })),
              now,
              p,
            ),
          },
  };
}

/** The report, from what the database holds (pure). */
export function reportOf(facts: CostFacts, now: Date, p: Prices = PRICES): CostReport {
  const staging = facts.targets
    .filter((t) => t.role === 'staging')
    .map((t) => ({
      target: t.name,
      url: t.url,
      bytes: t.usedBytes,
      objects: t.objects,
      pricing: pricingOf(t.url, p),
      storeCalls: t.traffic.requests,
    }));
  const archive = facts.targets
    .filter((t) => t.role === 'archive')
    .map((t) => archiveCost(t, facts.volumes, now, p));
  const priced = archive.flatMap((a) => (a.priced ? [a.priced] : []));
  const sum = (f: (x: NonNullable<ArchiveCost['priced']>) => number) =>
    priced.reduce((n, x) => n + f(x), 0);
  return {
    at: now.toISOString(),
    prices: { writtenOn: p.writtenOn, region: p.region, note: p.note },
    nas: facts.nas,
    staging,
    archive,
    total: {
      storageMonthly: sum((x) => x.storageMonthly),
      requestsCost: sum((x) => x.requestsCost),
      restore: {
        bulk: sum((x) => x.restore.bulk.total),
        standard: sum((x) => x.restore.standard.total),
      },
      earlyDeletion: {
        objects: sum((x) => x.earlyDeletion.objects),
        dollars: sum((x) => x.earlyDeletion.dollars),
      },
    },
  };
}

export interface CostDeps {
  nas(): Promise<{ packs: number; bytes: number }>;
  targets(): Promise<TargetRow[]>;
  volumes(): Promise<VolumeRow[]>;
  now?: () => Date;
  prices?: Prices;
}

export function costService(deps: CostDeps) {
  return {
    async report(): Promise<CostReport> {
      const [nas, targets, volumes] = await Promise.all([
        deps.nas(),
        deps.targets(),
        deps.volumes(),
      ]);
      return reportOf({ nas, targets, volumes }, deps.now?.() ?? new Date(), deps.prices);
    },
  };
}
