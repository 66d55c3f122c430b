/**
 * `kinvaultd cost` (built command): the report from real rows in a coordinator's
 * database (targets, packs on the NAS, verified volumes at a Deep Archive target,
 * inserted directly rather than by a whole backup, so that the test stays fast), and
 * `--model`, which needs no data directory, with the issue's headline numbers.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initCoordinator,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
} from './support/kinvaultd.js';
import { databaseOf } from './support/files.js';

const GiB = 2 ** 30;
const DAY = 86_400_000;

describe('kinvaultd cost --model (no data directory)', () => {
  it('250 GB in 55,000 files: 55,000 PUTs per file against 50 volumes', async () => {
    const args = ['cost', '--model', '--size', '250GB', '--files', '55000', '--volume-size', '5GB'];
    const json = await runKinvaultd([...args, '--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const m = JSON.parse(json.stdout) as {
      size: number;
      perFile: { objects: number; putRequests: number; putCost: number };
      perVolume: { objects: number; putRequests: number; restore: { bulk: { requests: number } } };
    };
    expect(m.size).toBe(250e9);
    expect(m.perFile).toMatchObject({ objects: 55_000, putRequests: 55_000 });
    expect(m.perFile.putCost).toBeCloseTo(2.75, 10);
    // 50 volumes of 150 parts of 32 MiB, each with its create and complete.
    expect(m.perVolume).toMatchObject({ objects: 50, putRequests: 7_600 });
    expect(m.perVolume.restore.bulk.requests).toBeCloseTo(0.00125, 10);

    const text = await runKinvaultd(args);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^objects +55,000 +50$/m);
    expect(text.stdout).toMatch(/^upload requests \(PUT\) +55,000 +7,600$/m);
    expect(text.stdout).toMatch(/^ {2}their cost, once +\$2\.75 +\$0\.38$/m);
    expect(text.stdout).toMatch(/^restore requests \(one per object\) +55,000 +50$/m);
    expect(text.stdout).toContain('150 parts of 32 MiB plus create and complete: 152 PUT requests');
    expect(text.stdout).toContain('us-east-1 of 2026-12-02');
  });

  it('refuses a model without a size, and a report without a data directory (exit 2)', async () => {
    const noSize = await runKinvaultd(['cost', '--model', '--files', '10']);
    expect(noSize.code).toBe(2);
    expect(noSize.stderr).toContain('--size');
    const noDir = await runKinvaultd(['cost']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain('--data-dir');
  });
});

describe('kinvaultd cost (from the database)', () => {
  let dataDir: string;

  beforeAll(async () => {
    const init = await initCoordinator('kinvaultd-cost-');
    dataDir = init.dataDir;
    // The embedded database runs while the coordinator does: insert, then stop it, so
    // that no job touches the made-up targets.
    const c = await startCoordinator(dataDir, init.port);
    const sql = await databaseOf(dataDir);
    try {
      await sql.begin(async (tx) => {
        await tx`insert into targets (name, url, role) values
          ('usb', 'file:///nonexistent/kinvault-cost-test', 'staging'),
          ('glacier', 's3://bucket/kv?storageClass=DEEP_ARCHIVE', 'archive')`;
        await tx`update targets set requests = 17 where name = 'usb'`;
        // Three packs of 1 GiB on the NAS; the first also at usb.
        const packs = [0, 1, 2].map(() => randomBytes(32));
        for (const p of packs) {
          await tx`insert into packs (name, size) values (${p}, ${GiB})`;
          await tx`insert into pack_locations (pack, location, state) values (${p}, 'nas', 'ok')`;
        }
        await tx`insert into pack_locations (pack, location, state) values (${packs[0]!}, 'staging:usb', 'ok')`;
        // Volume 1: packs 0 and 1, 2 GiB + 4 MiB, 65 parts, uploaded 60 days ago.
        // Volume 2: pack 2, 1 GiB + 4 MiB, 33 parts, uploaded 400 days ago.
        const volumes = [
          { packs: [packs[0]!, packs[1]!], size: 2 * GiB + 4 * 2 ** 20, parts: 65, days: 60 },
          { packs: [packs[2]!], size: GiB + 4 * 2 ** 20, parts: 33, days: 400 },
        ];
        for (const [i, v] of volumes.entries()) {
          const at = new Date(Date.now() - v.days * DAY);
          const [row] = await tx<{ id: string }[]>`
            insert into volumes (target, key, state, size, created_at, part_size, parts,
              parts_done, storage_class, uploaded_at, verified_at)
            values ('glacier', ${`volumes/kinvault-00000${i + 1}.iso`}, 'verified', ${v.size},
              ${at}, ${32 * 2 ** 20}, ${v.parts}, ${v.parts}, 'DEEP_ARCHIVE', ${at}, ${at})
            returning id`;
          for (const [position, p] of v.packs.entries())
            await tx`insert into volume_packs (volume, pack, position, byte_offset)
                     values (${row!.id}, ${p}, ${position}, ${position * GiB})`;
        }
      });
    } finally {
      await sql.end();
      await c.stop();
    }
  }, 120_000);

  afterAll(async () => {
    await removeTempDirs();
  });

  it('reports bytes per tier, requests, storage, restores and early deletion', async () => {
    const r = await runKinvaultd(['cost', '--data-dir', dataDir, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      nas: { packs: number; bytes: number };
      staging: { target: string; bytes: number; pricing: { kind: string }; storeCalls: number }[];
      archive: {
        target: string;
        volumes: number;
        bytes: number;
        requests: { put: number; head: number };
        priced: {
          storageMonthly: number;
          requestsCost: number;
          restore: { bulk: { total: number; requests: number }; standard: { total: number } };
          earlyDeletion: { objects: number; dollars: number };
        };
      }[];
    };
    expect(report.nas).toEqual({ packs: 3, bytes: 3 * GiB });
    expect(report.staging).toMatchObject([
      { target: 'usb', bytes: GiB, pricing: { kind: 'free' }, storeCalls: 17 },
    ]);
    const g = report.archive[0]!;
    // Stored: 3 GiB + 8 MiB = 3.0078125 GB in 2 volumes.
    expect(g).toMatchObject({ target: 'glacier', volumes: 2, bytes: 3 * GiB + 8 * 2 ** 20 });
    // (65 + 2) + (33 + 2) = 102 PUT-class; 2 HEADs each.
    expect(g.requests).toEqual({ put: 102, head: 4 });
    // 102 × 0.05 / 1000 + 4 × 0.0004 / 1000 = 0.0051 + 0.0000016.
    expect(g.priced.requestsCost).toBeCloseTo(0.0051016, 10);
    // 3.0078125 GB × 0.00099 + 2 × 2.05688e-7 = 0.0029777344 + 0.0000004114.
    expect(g.priced.storageMonthly).toBeCloseTo(0.0029781458, 9);
    // Bulk: 3.0078125 × 0.0025 = 0.00751953; 2 restores 0.00005; 5 GETs (3 packs, 2
    // MANIFESTs) 0.000002; nothing to download past 100 GB: 0.00757153.
    expect(g.priced.restore.bulk.total).toBeCloseTo(0.00757153, 7);
    // Standard: 3.0078125 × 0.02 = 0.06015625 + 0.0002 + 0.000002 = 0.06035825.
    expect(g.priced.restore.standard.total).toBeCloseTo(0.06035825, 7);
    // Volume 1 (60 days): 120 days left = 4 months × (2 GiB + 4 MiB + 32 KiB) at the
    // Deep Archive rate: 4 × 2.00393677 × 0.00099 = 0.0079355896.
    expect(g.priced.earlyDeletion.objects).toBe(1);
    expect(g.priced.earlyDeletion.dollars).toBeCloseTo(0.0079355896, 8);

    const text = await runKinvaultd(['cost', '--data-dir', dataDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('NAS: 3.22 GB in 3 packs');
    expect(text.stdout).toContain('usb: 1.07 GB in 1 objects; a disk or folder of yours');
    expect(text.stdout).toContain('glacier: S3 Glacier Deep Archive');
    expect(text.stdout).toContain('2 volume(s) stored, 3.23 GB');
    expect(text.stdout).toContain('102 PUT-class and 4 HEAD requests for the volumes');
    expect(text.stdout).toContain('1 volume(s) younger than 180 days');
  });
});
