/** SQL for snapshot manifests (sealed, opaque to the coordinator) and their packs. */
import { atomically, type Db } from './db.js';

const BYTEA_ARRAY = 1001;

export interface SnapshotRow {
  id: Buffer;
  device: string;
  created_at: Date;
  size: number;
}

export function snapshotsRepository(sql: Db) {
  return {
    /** Inserts a snapshot if every pack is available; returns the others otherwise. */
    async commit(
      id: Buffer,
      deviceId: string,
      sealed: Buffer,
      packs: readonly Buffer[],
      totals: { files: number; bytes: number },
    ): Promise<Buffer[]> {
      return atomically(sql, async (tx) => {
        const found = await tx<{ name: Buffer }[]>`
          select name from packs p
          where name = any(${tx.array(packs as Buffer[], BYTEA_ARRAY)}::bytea[])
            and exists (select 1 from pack_locations l
                        where l.pack = p.name and l.location = 'nas' and l.state = 'ok')
          for share of p`;
        const have = new Set(found.map((r) => r.name.toString('hex')));
        const missing = packs.filter((p) => !have.has(p.toString('hex')));
        if (missing.length > 0) return missing;
        await tx`insert into snapshots (id, device_id, sealed, files, logical_bytes) values (${id}, ${deviceId}, ${sealed}, ${totals.files}, ${totals.bytes})
                 on conflict (id) do nothing`;
        if (packs.length > 0) {
          await tx`insert into snapshot_packs (snapshot, pack)
                   select ${id}::bytea, p from unnest(${tx.array(packs as Buffer[], BYTEA_ARRAY)}::bytea[]) as t(p)
                   on conflict do nothing`;
        }
        return [];
      });
    },

    async list(): Promise<SnapshotRow[]> {
      return sql<SnapshotRow[]>`
        select s.id, d.name as device, s.created_at, length(s.sealed) as size
        from snapshots s join devices d on d.id = s.device_id order by s.created_at, s.id`;
    },

    async get(id: Buffer): Promise<Buffer | null> {
      const [r] = await sql<{ sealed: Buffer }[]>`select sealed from snapshots where id = ${id}`;
      return r?.sealed ?? null;
    },

    /** Per device: snapshot count, and the time and totals of its latest snapshot. */
    async perDevice(): Promise<
      { device: string; snapshots: number; last: Date | null; files: number; bytes: number }[]
    > {
      const rows = await sql<
        {
          device: string;
          snapshots: number;
          last: Date | null;
          files: string | null;
          bytes: string | null;
        }[]
      >`
        select d.name as device, count(s.id)::int as snapshots, max(s.created_at) as last,
               (select files from snapshots l where l.device_id = d.id order by created_at desc limit 1) as files,
               (select logical_bytes from snapshots l where l.device_id = d.id order by created_at desc limit 1) as bytes
        from devices d left join snapshots s on s.device_id = d.id group by d.id, d.name order by d.name`;
      return rows.map((r) => ({ ...r, files: Number(r.files ?? 0), bytes: Number(r.bytes ?? 0) }));
    },
  };
}

export type SnapshotsRepository = ReturnType<typeof snapshotsRepository>;
