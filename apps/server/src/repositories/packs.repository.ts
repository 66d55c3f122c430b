/** SQL for packs, their declared blobs and dedup queries. Ids and names are raw bytes. */
import type { Sql } from 'postgres';

const BYTEA_ARRAY = 1001; // PostgreSQL type oid of bytea[]
const INT2_ARRAY = 1005;

export interface DeclaredEntry {
  type: number;
  id: Buffer;
}

export function encodeEntries(entries: readonly DeclaredEntry[]): Buffer {
  const out = Buffer.alloc(entries.length * 33);
  entries.forEach((e, i) => {
    out[i * 33] = e.type;
    e.id.copy(out, i * 33 + 1);
  });
  return out;
}

function decodeEntries(bytes: Buffer): DeclaredEntry[] {
  const out: DeclaredEntry[] = [];
  for (let at = 0; at + 33 <= bytes.length; at += 33)
    out.push({ type: bytes[at]!, id: bytes.subarray(at + 1, at + 33) });
  return out;
}

export function packsRepository(sql: Sql) {
  return {
    async exists(name: Buffer): Promise<boolean> {
      const [r] = await sql`select 1 from packs where name = ${name}`;
      return r !== undefined;
    },

    async declare(
      name: Buffer,
      deviceId: string,
      size: number,
      entries: readonly DeclaredEntry[],
    ): Promise<void> {
      await sql`
        insert into pack_declarations (name, device_id, size, entries)
        values (${name}, ${deviceId}, ${size}, ${encodeEntries(entries)})
        on conflict (name) do update set device_id = excluded.device_id, size = excluded.size,
          entries = excluded.entries, created_at = now()`;
    },

    async declaration(
      name: Buffer,
    ): Promise<{ deviceId: string; size: number; entries: DeclaredEntry[] } | null> {
      const [d] = await sql<{ device_id: string; size: string; entries: Buffer }[]>`
        select device_id, size, entries from pack_declarations where name = ${name}`;
      return d
        ? { deviceId: d.device_id, size: Number(d.size), entries: decodeEntries(d.entries) }
        : null;
    },

    /**
     * Registers a stored pack and the blobs it was declared with, and drops the
     * declaration, in one transaction. Blobs already known keep their first pack.
     */
    async commit(name: Buffer, size: number, deviceId: string): Promise<{ blobs: number }> {
      return sql.begin(async (tx) => {
        const [d] = await tx<{ entries: Buffer }[]>`
          delete from pack_declarations where name = ${name} returning entries`;
        const entries = d ? decodeEntries(d.entries) : [];
        await tx`insert into packs (name, size, device_id) values (${name}, ${size}, ${deviceId})
                 on conflict (name) do nothing`;
        if (entries.length > 0) {
          await tx`
            insert into blobs (id, type, pack)
            select id, type, ${name}::bytea
            from unnest(${tx.array(
              entries.map((e) => e.id),
              BYTEA_ARRAY,
            )}::bytea[],
                        ${tx.array(
                          entries.map((e) => e.type),
                          INT2_ARRAY,
                        )}::int2[]) as t(id, type)
            on conflict (id) do nothing`;
        }
        return { blobs: entries.length };
      });
    },

    /** Which of these blob ids are in committed packs, and in which. */
    async have(ids: readonly Buffer[]): Promise<{ id: Buffer; pack: Buffer }[]> {
      if (ids.length === 0) return [];
      return sql<{ id: Buffer; pack: Buffer }[]>`
        select id, pack from blobs where id = any(${sql.array(ids as Buffer[], BYTEA_ARRAY)}::bytea[])`;
    },

    /** The packs that hold these blob ids (each pack once), and how many ids were found. */
    async packsOf(ids: readonly Buffer[]): Promise<{ packs: Buffer[]; found: number }> {
      if (ids.length === 0) return { packs: [], found: 0 };
      const rows = await sql<{ pack: Buffer; n: string }[]>`
        select pack, count(*) as n from blobs
        where id = any(${sql.array(ids as Buffer[], BYTEA_ARRAY)}::bytea[]) group by pack`;
      return { packs: rows.map((r) => r.pack), found: rows.reduce((n, r) => n + Number(r.n), 0) };
    },

    /** Which of these pack names are committed. */
    async committed(names: readonly Buffer[]): Promise<Buffer[]> {
      if (names.length === 0) return [];
      const rows = await sql<{ name: Buffer }[]>`
        select name from packs where name = any(${sql.array(names as Buffer[], BYTEA_ARRAY)}::bytea[])`;
      return rows.map((r) => r.name);
    },

    async totals(): Promise<{ packs: number; bytes: number; blobs: number }> {
      const [p] = await sql<
        { packs: string; bytes: string | null }[]
      >`select count(*) as packs, sum(size) as bytes from packs`;
      const [b] = await sql<{ blobs: string }[]>`select count(*) as blobs from blobs`;
      return { packs: Number(p!.packs), bytes: Number(p!.bytes ?? 0), blobs: Number(b!.blobs) };
    },
  };
}

export type PacksRepository = ReturnType<typeof packsRepository>;
