/** SQL for packs, their declared blobs and dedup queries. Ids and names are raw bytes. */
import type { TransactionSql } from 'postgres';
import { atomically, type Db } from './db.js';

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

/**
 * SQL condition: pack `p` is available, i.e. its NAS copy is in good state. Copies at
 * targets do not count (yet): restores and repairs read only the NAS, so a pack whose
 * NAS copy is lost must be stored again by the next backup even if a target has it.
 */
const AVAILABLE = (alias: string) =>
  `exists (select 1 from pack_locations l where l.pack = ${alias} and l.location = 'nas' and l.state = 'ok')`;

export type CopyState = 'ok' | 'damaged' | 'missing';

export interface PackProblem {
  name: Buffer;
  size: number;
  location: string;
  state: Exclude<CopyState, 'ok'>;
  detail: string | null;
  changedAt: Date;
  /** Snapshots that list this pack. */
  snapshots: number;
  /** Every blob of this pack is in another available pack (it can be retired). */
  replaced: boolean;
}

/** SQL condition: every blob of pack `p` is also in another available pack. */
const REPLACED = (alias: string) => `not exists (
  select 1 from blobs b where b.pack = ${alias} and not exists (
    select 1 from blobs o where o.id = b.id and o.pack <> b.pack and ${AVAILABLE('o.pack')}))`;

export function packsRepository(sql: Db) {
  return {
    async exists(name: Buffer): Promise<boolean> {
      const [r] = await sql`select 1 from packs where name = ${name}`;
      return r !== undefined;
    },

    /** True when the pack is registered and some copy of it is in good state. */
    async available(name: Buffer): Promise<boolean> {
      const [r] =
        await sql`select 1 from packs p where name = ${name} and ${sql.unsafe(AVAILABLE('p.name'))}`;
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
        on conflict (name, device_id) do update set size = excluded.size,
          entries = excluded.entries, created_at = now()`;
    },

    /** What this device declared the pack holds (null if it declared nothing). */
    async declaration(
      name: Buffer,
      deviceId: string,
    ): Promise<{ size: number; entries: DeclaredEntry[] } | null> {
      const [d] = await sql<{ size: string; entries: Buffer }[]>`
        select size, entries from pack_declarations
        where name = ${name} and device_id = ${deviceId}`;
      return d ? { size: Number(d.size), entries: decodeEntries(d.entries) } : null;
    },

    /**
     * Registers a stored pack, its NAS copy (just verified) and the blobs the uploading
     * device declared, and drops every declaration of it, in one transaction. A pack
     * stored again after its NAS copy was lost gets that copy back in good state.
     *
     * A declared blob is recorded only if no available pack holds it yet: the coordinator
     * cannot check a declaration (the header is encrypted), so a device that declares
     * ids its pack does not hold must not shadow, or seem to replace, a good copy.
     */
    async commit(
      name: Buffer,
      size: number,
      deviceId: string,
      /** More work in the same transaction (the pack's staging jobs). */
      alsoInTx?: (tx: TransactionSql) => Promise<unknown>,
    ): Promise<{ blobs: number }> {
      return atomically(sql, async (tx) => {
        await alsoInTx?.(tx);
        const declared = await tx<{ device_id: string; entries: Buffer }[]>`
          delete from pack_declarations where name = ${name} returning device_id, entries`;
        const d = declared.find((r) => r.device_id === deviceId);
        const entries = d ? decodeEntries(d.entries) : [];
        await tx`insert into packs (name, size, device_id) values (${name}, ${size}, ${deviceId})
                 on conflict (name) do nothing`;
        await tx`insert into pack_locations (pack, location, state, verified_at)
                 values (${name}, 'nas', 'ok', now())
                 on conflict (pack, location) do update
                 set state = 'ok', verified_at = now(), changed_at = now(), detail = null`;
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
            where not exists (
              select 1 from blobs o where o.id = t.id and ${tx.unsafe(AVAILABLE('o.pack'))})
            on conflict (id, pack) do nothing`;
        }
        return { blobs: entries.length };
      });
    },

    /** Which of these blob ids are in available packs, and in which (one per id). */
    async have(ids: readonly Buffer[]): Promise<{ id: Buffer; pack: Buffer }[]> {
      if (ids.length === 0) return [];
      return sql<{ id: Buffer; pack: Buffer }[]>`
        select distinct on (b.id) b.id, b.pack from blobs b
        where b.id = any(${sql.array(ids as Buffer[], BYTEA_ARRAY)}::bytea[])
          and ${sql.unsafe(AVAILABLE('b.pack'))}
        order by b.id, b.pack`;
    },

    /** Records what was found of a pack's copy at `location` (after reading or hashing it). */
    async setCopyState(
      name: Buffer,
      location: string,
      state: CopyState,
      detail: string | null,
    ): Promise<void> {
      await sql`
        insert into pack_locations (pack, location, state, verified_at, detail)
        values (${name}, ${location}, ${state}, ${state === 'ok' ? sql`now()` : null}, ${detail})
        on conflict (pack, location) do update set
          state = excluded.state,
          verified_at = coalesce(excluded.verified_at, pack_locations.verified_at),
          changed_at = case when pack_locations.state = excluded.state
                            then pack_locations.changed_at else now() end,
          detail = excluded.detail`;
    },

    /** The recorded state of the copy at `location` (null: no such copy). */
    async copyState(name: Buffer, location: string): Promise<CopyState | null> {
      const [r] = await sql<{ state: CopyState }[]>`
        select state from pack_locations where pack = ${name} and location = ${location}`;
      return r?.state ?? null;
    },

    /** Every registered pack, in name order, in pages (for a full check). */
    async page(after: Buffer | null, limit: number): Promise<{ name: Buffer; size: number }[]> {
      const rows = await sql<{ name: Buffer; size: string }[]>`
        select name, size from packs
        where ${after ? sql`name > ${after}` : sql`true`} order by name limit ${limit}`;
      return rows.map((r) => ({ name: r.name, size: Number(r.size) }));
    },

    /** Copies that are damaged or missing, with how many snapshots need each pack. */
    async problems(): Promise<PackProblem[]> {
      const rows = await sql<
        {
          name: Buffer;
          size: string;
          location: string;
          state: 'damaged' | 'missing';
          detail: string | null;
          changed_at: Date;
          snapshots: number;
          replaced: boolean;
        }[]
      >`
        select p.name, p.size, l.location, l.state, l.detail, l.changed_at,
               (select count(*)::int from snapshot_packs sp where sp.pack = p.name) as snapshots,
               ${sql.unsafe(REPLACED('p.name'))} as replaced
        from pack_locations l join packs p on p.name = l.pack
        where l.state <> 'ok' order by l.changed_at, p.name`;
      return rows.map((r) => ({
        name: r.name,
        size: Number(r.size),
        location: r.location,
        state: r.state,
        detail: r.detail,
        changedAt: r.changed_at,
        snapshots: r.snapshots,
        replaced: r.replaced,
      }));
    },

    /**
     * Packs of which every copy is missing (no bytes of them are left anywhere) and whose
     * every blob is in another available pack (stored again by a later backup).
     */
    async lostAndReplaced(): Promise<Buffer[]> {
      const rows = await sql<{ name: Buffer }[]>`
        select p.name from packs p
        where exists (select 1 from pack_locations l where l.pack = p.name)
          and not exists (select 1 from pack_locations l
                          where l.pack = p.name and l.state <> 'missing')
          and ${sql.unsafe(REPLACED('p.name'))}`;
      return rows.map((r) => r.name);
    },

    /**
     * Removes these packs from the index, in one transaction; the snapshots that listed
     * one list the available packs that hold its blobs instead. Only for packs whose every
     * blob is stored elsewhere (the caller checks, e.g. with `lostAndReplaced`).
     */
    async retire(names: readonly Buffer[]): Promise<void> {
      if (names.length === 0) return;
      await atomically(sql, async (tx) => {
        const list = tx.array(names as Buffer[], BYTEA_ARRAY);
        await tx`select name from packs where name = any(${list}::bytea[]) for update`;
        await tx`
          insert into snapshot_packs (snapshot, pack)
          select distinct sp.snapshot, o.pack
          from snapshot_packs sp
          join blobs b on b.pack = sp.pack
          join blobs o on o.id = b.id and o.pack <> b.pack
          where sp.pack = any(${list}::bytea[]) and ${tx.unsafe(AVAILABLE('o.pack'))}
          on conflict do nothing`;
        await tx`delete from snapshot_packs where pack = any(${list}::bytea[])`;
        await tx`delete from blobs where pack = any(${list}::bytea[])`;
        await tx`delete from pack_locations where pack = any(${list}::bytea[])`;
        await tx`delete from pack_declarations where name = any(${list}::bytea[])`;
        await tx`delete from packs where name = any(${list}::bytea[])`;
      });
    },

    /**
     * Blobs that are in no available pack, with a pack that held them and its state (a
     * damaged one first: it may still be read).
     */
    async lost(
      ids: readonly Buffer[],
    ): Promise<{ id: Buffer; pack: Buffer; state: 'damaged' | 'missing' }[]> {
      if (ids.length === 0) return [];
      return sql<{ id: Buffer; pack: Buffer; state: 'damaged' | 'missing' }[]>`
        select distinct on (b.id) b.id, b.pack, l.state from blobs b
        join pack_locations l on l.pack = b.pack and l.location = 'nas'
        where b.id = any(${sql.array(ids as Buffer[], BYTEA_ARRAY)}::bytea[])
          and not exists (select 1 from blobs o where o.id = b.id and ${sql.unsafe(AVAILABLE('o.pack'))})
        order by b.id, (l.state = 'damaged') desc, l.changed_at desc`;
    },

    /**
     * The available packs that hold these blob ids (each pack once), and the ids stored
     * in no available pack.
     */
    async packsOf(ids: readonly Buffer[]): Promise<{ packs: Buffer[]; missing: Buffer[] }> {
      if (ids.length === 0) return { packs: [], missing: [] };
      const [r] = await sql<{ packs: Buffer[] | null; missing: Buffer[] | null }[]>`
        with wanted as (select unnest(${sql.array(ids as Buffer[], BYTEA_ARRAY)}::bytea[]) as id),
        found as (
          select distinct on (b.id) b.id, b.pack from blobs b join wanted w on w.id = b.id
          where ${sql.unsafe(AVAILABLE('b.pack'))} order by b.id, b.pack)
        select (select array_agg(distinct pack) from found) as packs,
               (select array_agg(w.id) from wanted w
                where not exists (select 1 from found f where f.id = w.id)) as missing`;
      return { packs: r?.packs ?? [], missing: r?.missing ?? [] };
    },

    /** Which of these pack names are registered and available. */
    async committed(names: readonly Buffer[]): Promise<Buffer[]> {
      if (names.length === 0) return [];
      const rows = await sql<{ name: Buffer }[]>`
        select name from packs p
        where name = any(${sql.array(names as Buffer[], BYTEA_ARRAY)}::bytea[])
          and ${sql.unsafe(AVAILABLE('p.name'))}`;
      return rows.map((r) => r.name);
    },

    /**
     * Registered packs and their bytes; of those, the available ones (`available`,
     * `bytes`); and distinct blob ids.
     */
    async totals(): Promise<{
      packs: number;
      registeredBytes: number;
      available: number;
      bytes: number;
      blobs: number;
    }> {
      const [p] = await sql<
        { packs: string; all_bytes: string | null; available: string; bytes: string | null }[]
      >`
        select count(*) as packs, sum(size) as all_bytes,
               count(*) filter (where ${sql.unsafe(AVAILABLE('p.name'))}) as available,
               sum(size) filter (where ${sql.unsafe(AVAILABLE('p.name'))}) as bytes
        from packs p`;
      const [b] = await sql<{ blobs: string }[]>`select count(distinct id) as blobs from blobs`;
      return {
        packs: Number(p!.packs),
        registeredBytes: Number(p!.all_bytes ?? 0),
        available: Number(p!.available),
        bytes: Number(p!.bytes ?? 0),
        blobs: Number(b!.blobs),
      };
    },
  };
}

export type PacksRepository = ReturnType<typeof packsRepository>;
