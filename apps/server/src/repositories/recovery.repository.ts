/** SQL for the recovery objects: what a sealed catalog lists, read from the index. */
import type { Db } from './db.js';

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

/** Rows fetched at a time: a catalog of a large index is never all in memory. */
const BATCH = 500;

/** What a catalog is read from. */
export interface CatalogReader {
  packs(): AsyncGenerator<CatalogPack>;
  snapshots(): AsyncGenerator<CatalogSnapshot>;
}

export function recoveryRepository(sql: Db) {
  return {
    /**
     * Runs `read` on one consistent view of the index (a repeatable-read, read-only
     * transaction; within a caller's transaction, on that one).
     */
    async consistent<T>(read: (view: CatalogReader) => Promise<T>): Promise<T> {
      if ('savepoint' in sql) return read(recoveryRepository(sql));
      return (await sql.begin('isolation level repeatable read read only', (tx) =>
        read(recoveryRepository(tx)),
      )) as T;
    },

    /** Every pack with the blobs it is recorded for (the dedup index), by name, read in batches. */
    async *packs(): AsyncGenerator<CatalogPack> {
      const rows = sql<{ name: Buffer; size: string; ids: Buffer[]; types: number[] }[]>`
        select p.name, p.size,
               coalesce(array_agg(b.id order by b.id) filter (where b.id is not null), '{}') as ids,
               coalesce(array_agg(b.type order by b.id) filter (where b.id is not null), '{}') as types
        from packs p left join blobs b on b.pack = p.name
        group by p.name, p.size order by p.name`;
      for await (const batch of rows.cursor(BATCH))
        for (const r of batch)
          yield {
            name: r.name,
            size: Number(r.size),
            blobs: r.ids.map((id, i) => ({ id, type: r.types[i]! })),
          };
    },

    /** Every snapshot with its device's name, totals and packs, oldest first, in batches. */
    async *snapshots(): AsyncGenerator<CatalogSnapshot> {
      const rows = sql<
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
      for await (const batch of rows.cursor(BATCH))
        for (const r of batch)
          yield {
            id: r.id,
            device: r.device,
            createdAt: r.created_at,
            files: Number(r.files),
            bytes: Number(r.logical_bytes),
            packs: r.packs,
          };
    },

    /** Sealed manifests by id. */
    async sealedSnapshots(): Promise<{ id: Buffer; sealed: Buffer }[]> {
      return sql<{ id: Buffer; sealed: Buffer }[]>`select id, sealed from snapshots order by id`;
    },
  };
}

export type RecoveryRepository = ReturnType<typeof recoveryRepository>;
