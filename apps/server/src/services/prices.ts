/**
 * What S3 Glacier Deep Archive costs, for `kinvaultd cost`: the one place to change when
 * AWS changes its prices (then change `writtenOn` and the sources too).
 *
 * Written 2026-12-02 for us-east-1 (US East, N. Virginia), in US dollars, list prices
 * without free tiers but the one for data transfer out. AWS's pricing page
 * (https://aws.amazon.com/s3/pricing/) could not be reached from where this was written,
 * so every number was checked against the secondary sources named beside it, which
 * quote that page; check them there before relying on them. A "GB" in AWS's bills is
 * 2^30 bytes (the sources' worked examples count 1 TB as 1,024 GB), so is it here.
 *
 * What was found (2026-12-02), for the next person who checks:
 * - usage.ai, "Glacier and Deep Archive Pricing: The Complete 2026 Cost Guide", updated
 *   2026-06-05 (https://www.usage.ai/blogs/aws/storage-cost/glacier-deep-archive-pricing/):
 *   Deep Archive $0.00099/GB-month, retrieval Standard $0.02/GB and Bulk $0.0025/GB,
 *   180-day minimum, 40 KB overhead; S3 Standard $0.023/GB-month.
 * - awsnegotiations.com, "Glacier vs Glacier Deep Archive", May 2026 list
 *   (https://awsnegotiations.com/glacier-vs-glacier-deep-archive.html): the same storage
 *   and retrieval prices, 40 KB per object (32 KB + 8 KB), $0.05 per 1,000 transitions.
 * - drinkc.at, "Backup to Glacier", 2024-07 (https://drinkc.at/blog/2024/07/09/backup-to-glacier-calc):
 *   $0.05 per 1,000 PUTs; quotes the pricing page on the 40 KB: 8 KB at S3 Standard
 *   rates, 32 KB at Deep Archive rates.
 * - casouri's notes, 2023-03 (https://gist.github.com/casouri/56e1e634e50d1ae023f3bb8ea4d053de):
 *   $0.05 per 1,000 PUTs; restore Standard $0.10 per 1,000 requests + $0.02/GB, Bulk
 *   $0.025 per 1,000 + $0.0025/GB; S3 Standard $0.023/GB for the first 50 TB.
 * - A document quoting CloudZero's S3 pricing guide (https://www.cloudzero.com/blog/s3-pricing/):
 *   Deep Archive GET $0.0004 per 1,000, PUT $0.05 per 1,000. The least checked number
 *   here (one source; another, regispires' gist, says $0.04, likely a slip); it weighs
 *   nothing in a restore of a few dozen volumes.
 * - usage.ai, "S3 Egress Cost", updated 2026-06-04 (https://www.usage.ai/blogs/s3-egress-cost/):
 *   data out to the internet $0.09/GB up to 10 TB a month, the first 100 GB a month free
 *   (shared by the whole AWS account).
 * - Disagreeing: c3x.dev gives $0.03 per 1,000 PUTs (that is Glacier Flexible
 *   Retrieval's price, as arqbackup.com's Glacier page says); one document gives $0.11
 *   per 1,000 Standard restore requests. Kept: $0.05 and $0.10, which most sources give.
 * - AWS's own pages found (restoring-objects-retrieval-options, archival-storage) give
 *   the tiers' times (Standard within 12 hours, Bulk within 48) but no prices.
 */

/** A restore tier: what a thaw costs, and how long it takes. */
export interface RetrievalPrice {
  /** Per GB restored (the whole object is billed, whatever is read after). */
  perGb: number;
  /** Per 1,000 RestoreObject requests: one per object. */
  per1000Requests: number;
  /** Typically done within this many hours (AWS's documentation). */
  hours: number;
}

export interface Prices {
  writtenOn: string;
  region: string;
  currency: 'USD';
  /** Where the numbers come from, in a sentence (the details are in prices.ts). */
  note: string;
  /** Bytes in a billed GB. */
  gbBytes: number;
  /** Days in a billed month (pro-rata charges). */
  monthDays: number;
  deepArchive: {
    storagePerGbMonth: number;
    /** PUT, COPY, POST, LIST per 1,000; each part of a multipart upload, its create and complete count. */
    putPer1000: number;
    /** GET, HEAD and the rest per 1,000 (DELETE is free). */
    getPer1000: number;
    /** Each object is billed for at least this many days: deleted sooner, the rest pro rata. */
    minimumDays: number;
    /** Per object: index and metadata billed beside its bytes. */
    overheadAtArchiveRate: number;
    overheadAtStandardRate: number;
  };
  /** S3 Standard, for the 8 KB of each archived object's metadata. */
  standardStoragePerGbMonth: number;
  retrieval: { bulk: RetrievalPrice; standard: RetrievalPrice };
  /** Data transfer out to the internet (a restore downloads everything it thawed). */
  transferOut: { perGb: number; freeGbPerMonth: number };
}

export const PRICES: Prices = {
  writtenOn: '2026-12-02',
  region: 'us-east-1',
  currency: 'USD',
  note: "AWS list prices in us-east-1 as of 2026-12-02, checked against secondary sources (AWS's pricing page could not be reached when they were written; see apps/server/src/services/prices.ts)",
  gbBytes: 2 ** 30,
  monthDays: 30,
  deepArchive: {
    storagePerGbMonth: 0.00099, // usage.ai 2026-06-05; awsnegotiations.com May 2026; casouri 2023
    putPer1000: 0.05, // drinkc.at 2024; casouri 2023; awsnegotiations.com (transitions)
    getPer1000: 0.0004, // CloudZero, as quoted; one source only
    minimumDays: 180, // usage.ai; awsnegotiations.com; cold-tier-facts §2
    overheadAtArchiveRate: 32 * 1024, // drinkc.at quoting the pricing page; awsnegotiations.com
    overheadAtStandardRate: 8 * 1024, // the same
  },
  standardStoragePerGbMonth: 0.023, // usage.ai 2026-06-05; casouri 2023 (first 50 TB)
  retrieval: {
    // usage.ai 2026-06-05 and awsnegotiations.com for per GB; casouri 2023 for requests
    bulk: { perGb: 0.0025, per1000Requests: 0.025, hours: 48 },
    standard: { perGb: 0.02, per1000Requests: 0.1, hours: 12 },
  },
  transferOut: { perGb: 0.09, freeGbPerMonth: 100 }, // usage.ai 2026-06-04
};
