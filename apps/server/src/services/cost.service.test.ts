/**
 * The cost report from the rows the database would give (pure): which targets are
 * priced, the requests counted from the volumes' parts, storage, restore and
 * early-deletion sums, worked out by hand in the comments (prices of 2026-12-02).
 */
import { describe, expect, it } from 'vitest';
import type { TargetRow } from '../repositories/targets.repository.js';
import type { VolumeRow } from '../repositories/volumes.repository.js';
import { pricingOf, reportOf } from './cost.service.js';

const GiB = 2 ** 30;
const DAY = 86_400_000;
const now = new Date('2026-12-02T12:00:00Z');
const ago = (days: number) => new Date(now.getTime() - days * DAY);

function target(
  name: string,
  url: string,
  role: 'staging' | 'archive',
  more: Partial<TargetRow> = {},
): TargetRow {
  return {
    name,
    url,
    role,
    quotaBytes: null,
    volumeSize: null,
    lastSuccessAt: null,
    lastError: null,
    failingSince: null,
    fullSince: null,
    fullCheckedAt: null,
    fullReason: null,
    usedBytes: 0,
    recoveryBytes: 0,
    traffic: { requests: 0, bytesSent: 0, bytesReceived: 0 },
    objects: 0,
    packs: 0,
    ...more,
  };
}

let nextId = 1;
function volume(target: string, v: Partial<VolumeRow>): VolumeRow {
  const id = nextId++;
  return {
    id,
    target,
    key: `volumes/kinvault-${String(id).padStart(6, '0')}.iso`,
    state: 'verified',
    size: GiB,
    createdAt: ago(365),
    sha256: null,
    partSize: 32 * 2 ** 20,
    parts: 32,
    partsDone: 32,
    providerSha256: null,
    storageClass: 'DEEP_ARCHIVE',
    uploadedAt: ago(365),
    verifiedAt: ago(365),
    lastError: null,
    packs: 1,
    packBytes: GiB,
    ...v,
  };
}

describe('pricingOf', () => {
  it('prices Deep Archive only, and says why not otherwise', () => {
    expect(pricingOf('file:///mnt/usb/kinvault').kind).toBe('free');
    expect(pricingOf('gdrive://Kinvault?credentials=/c.json&token=/t.json').kind).toBe('free');
    expect(pricingOf('s3://bucket/kv?storageClass=DEEP_ARCHIVE')).toEqual({
      kind: 'deep-archive',
      why: null,
    });
    const ia = pricingOf('s3://bucket/kv?storageClass=STANDARD_IA');
    expect(ia.kind).toBe('not-priced');
    expect(ia.why).toContain('STANDARD_IA');
    // The default class is STANDARD: not priced either.
    expect(pricingOf('s3://bucket/kv').kind).toBe('not-priced');
    expect(pricingOf('s3://bucket/kv?region=eu-west-1&storageClass=DEEP_ARCHIVE').why).toContain(
      'eu-west-1',
    );
    expect(
      pricingOf('s3://bucket/kv?endpoint=http://127.0.0.1:9000&storageClass=DEEP_ARCHIVE').why,
    ).toContain('S3-compatible');
  });
});

describe('reportOf', () => {
  const glacier = 's3://bucket/kv?storageClass=DEEP_ARCHIVE';
  const facts = {
    nas: { packs: 12, bytes: 4 * GiB },
    targets: [
      target('usb', 'file:///mnt/usb/kinvault', 'staging', {
        usedBytes: 2 * GiB,
        objects: 7,
        traffic: { requests: 40, bytesSent: 0, bytesReceived: 0 },
      }),
      target('cloud', 's3://bucket/staging?storageClass=STANDARD_IA', 'staging'),
      target('glacier', glacier, 'archive', {
        traffic: { requests: 3, bytesSent: 0, bytesReceived: 0 },
      }),
      target('disk', 'file:///mnt/iso', 'archive'),
    ],
    volumes: [
      // Stored: 1 GB, 32 parts, 3 packs, uploaded 90 days ago.
      volume('glacier', { size: GiB, parts: 32, packs: 3, uploadedAt: ago(90) }),
      // Stored: 2 GB, 64 parts, 5 packs, 200 days ago.
      volume('glacier', {
        state: 'archived',
        size: 2 * GiB,
        parts: 64,
        packs: 5,
        uploadedAt: ago(200),
      }),
      // Under way: 10 of 32 parts sent.
      volume('glacier', {
        state: 'uploading',
        size: GiB,
        parts: 32,
        partsDone: 10,
        uploadedAt: null,
      }),
      // Sealed, nothing sent.
      volume('glacier', {
        state: 'sealed',
        size: GiB,
        parts: null,
        partsDone: 0,
        uploadedAt: null,
      }),
      volume('disk', { size: GiB, parts: 1 }),
    ],
  };
  const r = reportOf(facts, now);
  const g = r.archive.find((a) => a.target === 'glacier')!;

  it('shows the bytes of every tier', () => {
    expect(r.nas).toEqual({ packs: 12, bytes: 4 * GiB });
    expect(
      r.staging.map((s) => [s.target, s.bytes, s.objects, s.pricing.kind, s.storeCalls]),
    ).toEqual([
      ['usb', 2 * GiB, 7, 'free', 40],
      ['cloud', 0, 0, 'not-priced', 0],
    ]);
    expect([g.volumes, g.bytes]).toEqual([2, 3 * GiB]);
    expect(g.underWay).toEqual({ volumes: 2, bytes: 2 * GiB });
    expect(g.storeCalls).toBe(3);
  });

  it('counts the requests of each volume from its parts', () => {
    // Stored: 32 + 2 and 64 + 2 PUT-class, 2 HEADs each; uploading: create + 10 parts,
    // one HEAD; sealed: none. 34 + 66 + 11 = 111 PUT-class, 5 HEADs.
    expect(g.requests).toEqual({ put: 111, head: 5 });
    // 111 × 0.05 / 1000 + 5 × 0.0004 / 1000 = 0.00555 + 0.000002.
    expect(g.priced!.requestsCost).toBeCloseTo(0.005552, 12);
  });

  it('prices storage, a full restore and early deletion of the stored volumes', () => {
    const p = g.priced!;
    // 3 GB × 0.00099 + 2 objects × 2.05688e-7 = 0.00297 + 4.11376e-7.
    expect(p.storageMonthly).toBeCloseTo(0.002970411376, 11);
    expect(p.overheadMonthly).toBeCloseTo(4.11376e-7, 11);
    // Bulk: 3 GB × 0.0025 = 0.0075; 2 restores × 0.000025 = 0.00005; GETs: a pack each
    // and a MANIFEST each, (3 + 1) + (5 + 1) = 10 × 0.0000004 = 0.000004; no download
    // charge under 100 GB: 0.007554.
    expect(p.restore.bulk.total).toBeCloseTo(0.007554, 12);
    // Standard: 3 × 0.02 = 0.06; 2 × 0.0001 = 0.0002; 0.000004: 0.060204.
    expect(p.restore.standard.total).toBeCloseTo(0.060204, 12);
    // Only the 90-day-old 1 GB volume is under the minimum: 3 months × 0.00099 ×
    // (1 + 2^-15) = 0.0029700906372.
    expect(p.earlyDeletion.objects).toBe(1);
    expect(p.earlyDeletion.dollars).toBeCloseTo(0.0029700906372, 12);
  });

  it('leaves a folder of ISO files unpriced, and totals the priced targets', () => {
    const d = r.archive.find((a) => a.target === 'disk')!;
    expect(d.pricing.kind).toBe('free');
    expect(d.priced).toBeNull();
    expect(d.requests).toEqual({ put: 1, head: 2 });
    expect(r.total.storageMonthly).toBeCloseTo(g.priced!.storageMonthly, 15);
    expect(r.total.restore.bulk).toBeCloseTo(0.007554, 12);
    expect(r.total.earlyDeletion.objects).toBe(1);
    expect(r.prices.writtenOn).toBe('2026-12-02');
  });
});
