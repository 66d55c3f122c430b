/** SQL for the recovery objects: what a sealed catalog lists, read from the index. */
import type { Sql } from 'postgres';

export interface CatalogPack {
  name: Buffer;
  size: number;
  blobs: { id: Buffer; type: number }[];
}

export interface CatalogSnapshot {
  id: Buffer;
  device: string;
  createdAt: Date;
  files: number;
  bytes: number;
  packs: Buffer[];
}

export function recoveryRepository(sql: Sql) {
  return {
    /** Every pack with the blobs it is recorded for (the dedup index), by name. */
    async packs(): Promise<CatalogPack[]> {
      const rows = await sql<{ name: Buffer; size: string; ids: Buffer[]; types: number[] }[]>`
        select p.name, p.size,
               coalesce(array_agg(b.id order by b.id) filter (where b.id is not null), '{}') as ids,
               coalesce(array_agg(b.type order by b.id) filter (where b.id is not null), '{}') as types
        from packs p left join blobs b on b.pack = p.name
        group by p.name, p.size order by p.name`;
      return rows.map((r) => ({
        name: r.name,
        size: Number(r.size),
        blobs: r.ids.map((id, i) => ({ id, type: r.types[i]! })),
      }));
    },

    /** Every snapshot with its device's name, totals and packs, oldest first. */
    async snapshots(): Promise<CatalogSnapshot[]> {
      const rows = await sql<
        {
          id: Buffer;
          device: string;
          created_at: Date;
          files: string;
          logical_bytes: string;
          packs: Buffer[];
        }[]
      >`
        select s.id, d.name as device, s.created_at, s.files, s.logical_bytes,
               coalesce(array_agg(sp.pack order by sp.pack) filter (where sp.pack is not null), '{}') as packs
        from snapshots s join devices d on d.id = s.device_id
        left join snapshot_packs sp on sp.snapshot = s.id
        group by s.id, d.name order by s.created_at, s.id`;
      return rows.map((r) => ({
        id: r.id,
        device: r.device,
        createdAt: r.created_at,
        files: Number(r.files),
        bytes: Number(r.logical_bytes),
        packs: r.packs,
      }));
    },

    /** Sealed manifests by id. */
    async sealedSnapshots(): Promise<{ id: Buffer; sealed: Buffer }[]> {
      return sql<{ id: Buffer; sealed: Buffer }[]>`select id, sealed from snapshots order by id`;
    },
  };
}

export type RecoveryRepository = ReturnType<typeof recoveryRepository>;
