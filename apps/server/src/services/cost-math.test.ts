/**
 * The cost arithmetic against answers worked out by hand (in the comments) from the
 * price table of 2026-12-02: Deep Archive $0.00099/GB-month, S3 Standard $0.023,
 * PUT $0.05 and GET $0.0004 per 1,000, Bulk $0.0025/GB + $0.025 per 1,000 restores,
 * Standard $0.02/GB + $0.10 per 1,000, download $0.09/GB past 100 GB; GB = 2^30 bytes.
 */
import { describe, expect, it } from 'vitest';
import {
  archiveRateMonthly,
  earlyDeletion,
  modelLibrary,
  objectMonthly,
  overheadMonthly,
  putRequests,
  putRequestsOfParts,
  restoreCost,
} from './cost-math.js';
import { PRICES } from './prices.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const DAY = 86_400_000;

describe('storage', () => {
  it('bills 40 KB per object: 32 KB at the Deep Archive rate, 8 KB at S3 Standard', () => {
    // 32 KiB = 2^-15 GB: 0.00099 / 32768 = 3.0212e-8; 8 KiB = 2^-17 GB: 0.023 / 131072
    // = 1.75476e-7; together 2.05688e-7 $ a month per object.
    expect(objectMonthly(0)).toBeCloseTo(2.05688e-7, 11);
    // 55,000 objects × 2.05688e-7 = $0.0113129 a month.
    expect(overheadMonthly(55_000)).toBeCloseTo(0.0113129, 7);
  });

  it('bills an object its bytes at the Deep Archive rate beside the overhead', () => {
    // 1 GB: 0.00099 + 2.05688e-7 = 0.000990205688.
    expect(objectMonthly(GiB)).toBeCloseTo(0.000990205688, 12);
    // The part the 180 days apply to: (1 + 2^-15) × 0.00099 = 0.000990030212.
    expect(archiveRateMonthly(GiB)).toBeCloseTo(0.000990030212, 12);
  });
});

describe('PUT requests of one upload', () => {
  it('is one PutObject up to a part, else create + parts + complete', () => {
    expect(putRequests(1)).toBe(1);
    expect(putRequests(32 * MiB)).toBe(1);
    // 32 MiB + 1 byte: 2 parts + 2.
    expect(putRequests(32 * MiB + 1)).toBe(4);
    // 5 GB / 33,554,432 = 149.01 → 150 parts + 2.
    expect(putRequests(5e9)).toBe(152);
    // With 512 MiB parts: 5e9 / 536,870,912 = 9.31 → 10 parts + 2.
    expect(putRequests(5e9, 512 * MiB)).toBe(12);
  });

  it('stays under 10,000 parts: 1 TB goes in parts of 100 MB', () => {
    // 1e12 / 32 MiB = 29,802 parts, too many: parts of ceil(1e12 / 10,000) = 1e8 bytes.
    expect(putRequests(1e12)).toBe(10_002);
  });

  it('counts a recorded upload from its parts', () => {
    expect(putRequestsOfParts(1)).toBe(1);
    expect(putRequestsOfParts(150)).toBe(152);
  });
});

describe('a full restore', () => {
  it('at Bulk: per GB, per restore request, per GET; no download charge under 100 GB', () => {
    // 10 GB × 0.0025 = 0.025; 2 restores × 0.025 / 1000 = 0.00005; 5 GETs × 0.0004 /
    // 1000 = 0.000002; total 0.025052.
    const r = restoreCost('bulk', { bytes: 10 * GiB, objects: 2, gets: 5 });
    expect(r.retrieval).toBeCloseTo(0.025, 12);
    expect(r.requests).toBeCloseTo(0.00005, 12);
    expect(r.gets).toBeCloseTo(0.000002, 12);
    expect(r.transfer).toBe(0);
    expect(r.total).toBeCloseTo(0.025052, 12);
    expect(r.hours).toBe(48);
  });

  it('at Standard, with the download past the free 100 GB', () => {
    // 200 GB × 0.02 = 4; 1 restore × 0.10 / 1000 = 0.0001; 1 GET 0.0000004; download
    // (200 − 100) × 0.09 = 9; total 13.0001004.
    const r = restoreCost('standard', { bytes: 200 * GiB, objects: 1, gets: 1 });
    expect(r.transfer).toBeCloseTo(9, 10);
    expect(r.total).toBeCloseTo(13.0001004, 10);
    expect(r.hours).toBe(12);
  });
});

describe('early deletion under the 180-day minimum', () => {
  it('bills the remaining days pro rata at the Deep Archive rate', () => {
    const now = new Date('2026-12-02T12:00:00Z');
    const ago = (days: number) => new Date(now.getTime() - days * DAY);
    // 90 days old: 90 days left = 3 months × 0.00099 × (1 + 2^-15) = 0.0029700906372.
    // 180 and 200 days old: nothing left to bill.
    const e = earlyDeletion(
      [
        { bytes: GiB, since: ago(90) },
        { bytes: GiB, since: ago(180) },
        { bytes: 5 * GiB, since: ago(200) },
      ],
      now,
    );
    expect(e.objects).toBe(1);
    expect(e.dollars).toBeCloseTo(0.0029700906372, 12);
  });

  it('is the whole minimum for an object stored today', () => {
    const now = new Date();
    // 100 GB just now: 6 months × (100 + 2^-15) × 0.00099 = 0.594000181.
    const e = earlyDeletion([{ bytes: 100 * GiB, since: now }], now);
    expect(e.dollars).toBeCloseTo(0.594000181, 8);
  });
});

describe('the model of a library not backed up yet', () => {
  const model = modelLibrary({ size: 250e9, files: 55_000, volumeSize: 5e9, partSize: 32 * MiB });

  it('250 GB in 55,000 files: 55,000 PUTs per file, 50 objects of 152 PUTs each per volume', () => {
    expect(model.perFile.objects).toBe(55_000);
    // 250e9 / 55,000 = 4.5 MB a file, under a part: one PutObject each.
    expect(model.perFile.putRequests).toBe(55_000);
    expect(model.perFile.putCost).toBeCloseTo(2.75, 10); // 55,000 × 0.05 / 1000
    expect(model.perVolume.objects).toBe(50);
    expect(model.perVolume.putRequests).toBe(7_600); // 50 × 152
    expect(model.perVolume.putCost).toBeCloseTo(0.38, 10);
    expect(model.partsPerVolume).toBe(150);
    expect(model.volumePartSize).toBe(32 * MiB);
  });

  it('prices storage, the first year and the restore requests of each way', () => {
    // 250e9 bytes = 232.8306 GB × 0.00099 = 0.2305023 a month.
    const bytes = 0.2305023;
    expect(model.perFile.overheadMonthly).toBeCloseTo(0.0113129, 7);
    expect(model.perFile.storageMonthly).toBeCloseTo(bytes + 0.0113129, 6);
    expect(model.perVolume.storageMonthly).toBeCloseTo(bytes + 50 * 2.05688e-7, 6);
    // First year: 2.75 + 12 × 0.2418152 = 5.6517824; 0.38 + 12 × 0.2305126 = 3.1461515.
    expect(model.perFile.firstYear).toBeCloseTo(5.6517824, 5);
    expect(model.perVolume.firstYear).toBeCloseTo(3.1461515, 5);
    // Restore requests at Standard: 55,000 × 0.10 / 1000 = 5.50 against 50 × … = 0.005.
    expect(model.perFile.restore.standard.requests).toBeCloseTo(5.5, 10);
    expect(model.perVolume.restore.standard.requests).toBeCloseTo(0.005, 10);
    // Thawing 232.83 GB at Bulk is 0.5820766 either way.
    expect(model.perVolume.restore.bulk.retrieval).toBeCloseTo(0.5820766, 7);
  });

  it('puts the rest in a last, smaller volume', () => {
    // 12 GB in 5 GB volumes: 2 × 152 PUTs + a 2 GB volume of 60 parts (2e9 / 32 MiB =
    // 59.6) + 2 = 366.
    const m = modelLibrary({ size: 12e9, files: 10, volumeSize: 5e9, partSize: 32 * MiB });
    expect(m.perVolume.objects).toBe(3);
    expect(m.perVolume.putRequests).toBe(366);
  });

  it('uses the price table it is given', () => {
    const double = {
      ...PRICES,
      deepArchive: { ...PRICES.deepArchive, putPer1000: 0.1 },
    };
    const m = modelLibrary(
      { size: 250e9, files: 55_000, volumeSize: 5e9, partSize: 32 * MiB },
      double,
    );
    expect(m.perFile.putCost).toBeCloseTo(5.5, 10);
  });
});
