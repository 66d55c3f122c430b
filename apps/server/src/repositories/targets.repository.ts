/** SQL for storage targets and the copies at them (pack_locations, target_objects). */
import { atomically, type Db } from './db.js';

export interface TargetRow {
  name: string;
  url: string;
  role: 'staging' | 'archive';
  quotaBytes: number | null;
  /** An archive target's volume size (null: the default). */
  volumeSize: number | null;
  lastSuccessAt: Date | null;
  lastError: string | null;
  failingSince: Date | null;
  /** Since when the provider says it has no room (our quota aside); null: it has. */
  fullSince: Date | null;
  fullCheckedAt: Date | null;
  fullReason: string | null;
  /** Bytes of our copies there (packs and other objects). */
  usedBytes: number;
  /** Of those, the bytes of manifests, key files and catalogs. */
  recoveryBytes: number;
  /** What the coordinator sent there and read from there, in all. */
  traffic: { requests: number; bytesSent: number; bytesReceived: number };
  objects: number;
  /** Of those, the packs. */
  packs: number;
}

export const stagingLocation = (target: string) => `staging:${target}`;

export function targetsRepository(sql: Db) {
  return {
    async add(t: {
      name: string;
      url: string;
      role: string;
      quotaBytes: number | null;
      volumeSize?: number | null;
    }) {
      const rows = await sql`
        insert into targets (name, url, role, quota_bytes, volume_size)
        values (${t.name}, ${t.url}, ${t.role}, ${t.quotaBytes}, ${t.volumeSize ?? null})
        on conflict (name) do nothing returning name`;
      return rows.length > 0;
    },

    /** Every target in placement order, with what our copies there take. */
    async list(): Promise<TargetRow[]> {
      const rows = await sql<
        {
          name: string;
          url: string;
          role: 'staging' | 'archive';
          quota_bytes: string | null;
          volume_size: string | null;
          last_success_at: Date | null;
          last_error: string | null;
          failing_since: Date | null;
          full_since: Date | null;
          full_checked_at: Date | null;
          full_reason: string | null;
          requests: string;
          bytes_sent: string;
          bytes_received: string;
          pack_bytes: string;
          packs: string;
          object_bytes: string;
          objects: string;
        }[]
      >`
        select t.*,
          coalesce((select sum(p.size) from pack_locations l join packs p on p.name = l.pack
                    where l.location = 'staging:' || t.name and l.state = 'ok'), 0) as pack_bytes,
          (select count(*) from pack_locations l
            where l.location = 'staging:' || t.name and l.state = 'ok') as packs,
          coalesce((select sum(size) from target_objects o where o.target = t.name), 0) as object_bytes,
          (select count(*) from target_objects o where o.target = t.name) as objects
        from targets t order by t.position`;
      return rows.map((r) => ({
        name: r.name,
        url: r.url,
        role: r.role,
        quotaBytes: r.quota_bytes === null ? null : Number(r.quota_bytes),
        volumeSize: r.volume_size === null ? null : Number(r.volume_size),
        lastSuccessAt: r.last_success_at,
        lastError: r.last_error,
        failingSince: r.failing_since,
        fullSince: r.full_since,
        fullCheckedAt: r.full_checked_at,
        fullReason: r.full_reason,
        usedBytes: Number(r.pack_bytes) + Number(r.object_bytes),
        recoveryBytes: Number(r.object_bytes),
        traffic: {
          requests: Number(r.requests),
          bytesSent: Number(r.bytes_sent),
          bytesReceived: Number(r.bytes_received),
        },
        objects: Number(r.packs) + Number(r.objects),
        packs: Number(r.packs),
      }));
    },

    async setQuota(name: string, quotaBytes: number | null): Promise<void> {
      await sql`update targets set quota_bytes = ${quotaBytes} where name = ${name}`;
    },

    async remove(name: string): Promise<void> {
      await atomically(sql, async (tx) => {
        await tx`delete from pack_locations where location = ${stagingLocation(name)}
                 or location like ${`volume:%@${name}`}`;
        await tx`delete from targets where name = ${name}`;
      });
    },

    async succeeded(name: string): Promise<void> {
      await sql`update targets set last_success_at = now(), failing_since = null
                where name = ${name}`;
    },

    /** The provider refused a write for want of room: reachable, but full. */
    async providerFull(name: string, reason: string): Promise<void> {
      await sql`update targets set last_success_at = now(), failing_since = null,
                full_since = coalesce(full_since, now()), full_checked_at = now(),
                full_reason = ${reason} where name = ${name}`;
    },

    /** A pack copy was written: the provider has room again. */
    async hasRoom(name: string): Promise<void> {
      await sql`update targets set full_since = null, full_checked_at = null, full_reason = null
                where name = ${name} and full_since is not null`;
    },

    async addTraffic(name: string, t: { requests: number; sent: number; received: number }) {
      if (t.requests === 0 && t.sent === 0 && t.received === 0) return;
      await sql`update targets set requests = requests + ${t.requests},
                bytes_sent = bytes_sent + ${t.sent}, bytes_received = bytes_received + ${t.received}
                where name = ${name}`;
    },

    async failed(name: string, error: string): Promise<void> {
      await sql`update targets set last_error = ${error},
                failing_since = coalesce(failing_since, now()) where name = ${name}`;
    },

    /** The staging targets that hold a verified copy of this pack, and its volume copies. */
    async packCopies(pack: Buffer): Promise<{ staging: string[]; volumes: number }> {
      const rows = await sql<{ location: string }[]>`
        select location from pack_locations
        where pack = ${pack} and state = 'ok'
          and (location like 'staging:%' or location like 'volume:%')`;
      const staging = rows.filter((r) => r.location.startsWith('staging:'));
      return {
        staging: staging.map((r) => r.location.slice('staging:'.length)),
        volumes: rows.length - staging.length,
      };
    },

    /** Forgets a staging copy that was deleted (its pack keeps enough others). */
    async dropPackCopy(pack: Buffer, target: string): Promise<void> {
      await sql`delete from pack_locations where pack = ${pack} and location = ${stagingLocation(target)}`;
    },

    /** The packs (with sizes) that have a copy recorded at `target`, in good state. */
    async packsAt(target: string): Promise<{ name: Buffer; size: number }[]> {
      const rows = await sql<{ name: Buffer; size: string }[]>`
        select p.name, p.size from pack_locations l join packs p on p.name = l.pack
        where l.location = ${stagingLocation(target)} and l.state = 'ok' order by p.name`;
      return rows.map((r) => ({ name: r.name, size: Number(r.size) }));
    },

    /** Records what a check found of a copy at a target (damaged or missing). */
    async markPackCopy(pack: Buffer, target: string, state: 'damaged' | 'missing', detail: string) {
      await sql`
        update pack_locations set state = ${state}, detail = ${detail}, changed_at = now()
        where pack = ${pack} and location = ${stagingLocation(target)}`;
    },

    /** Records a verified copy; false (nothing recorded) if the target was removed meanwhile. */
    async recordPackCopy(pack: Buffer, target: string): Promise<boolean> {
      const rows = await sql`
        insert into pack_locations (pack, location, state, verified_at)
        select ${pack}, ${stagingLocation(target)}, 'ok', now()
        where exists (select 1 from targets where name = ${target})
        on conflict (pack, location) do update
        set state = 'ok', verified_at = now(), changed_at = now(), detail = null
        returning pack`;
      return rows.length > 0;
    },

    /** The objects recorded at a target: key → hex SHA-256. */
    async objectsAt(target: string): Promise<Map<string, string>> {
      const rows = await sql<{ key: string; sha256: Buffer }[]>`
        select key, sha256 from target_objects where target = ${target}`;
      return new Map(rows.map((r) => [r.key, r.sha256.toString('hex')]));
    },

    async recordObjectCopy(target: string, key: string, size: number, sha256: Buffer) {
      await sql`
        insert into target_objects (target, key, size, sha256)
        values (${target}, ${key}, ${size}, ${sha256})
        on conflict (target, key) do update
        set size = excluded.size, sha256 = excluded.sha256, verified_at = now()`;
    },

    async forgetObject(target: string, key: string): Promise<void> {
      await sql`delete from target_objects where target = ${target} and key = ${key}`;
    },

    /** Packs with fewer than `copies` verified off-site copies (staging and volumes), by name after `after`. */
    async unprotectedPacks(copies: number, limit = 10_000, after?: Buffer): Promise<Buffer[]> {
      const rows = await sql<{ name: Buffer }[]>`
        select p.name from packs p
        where p.name > ${after ?? Buffer.alloc(0)}
          and exists (select 1 from pack_locations n where n.pack = p.name and n.location = 'nas' and n.state = 'ok')
          and (select count(*) from pack_locations l
               where l.pack = p.name and l.state = 'ok'
                 and (l.location like 'staging:%' or l.location like 'volume:%')) < ${copies}
        order by p.name limit ${limit}`;
      return rows.map((r) => r.name);
    },

    /** How many packs lack copies, and since when the oldest of them is waiting. */
    async protection(copies: number): Promise<{ unprotected: number; since: Date | null }> {
      const [r] = await sql<{ n: string; since: Date | null }[]>`
        select count(*) as n, min(p.created_at) as since from packs p
        where exists (select 1 from pack_locations n where n.pack = p.name and n.location = 'nas' and n.state = 'ok')
          and (select count(*) from pack_locations l
               where l.pack = p.name and l.state = 'ok'
                 and (l.location like 'staging:%' or l.location like 'volume:%')) < ${copies}`;
      return { unprotected: Number(r?.n ?? 0), since: r?.since ?? null };
    },

    /**
     * For each staging target, the size of the smallest pack that lacks copies and has
     * none there: the next pack it would be asked to take (absent: none waits for it).
     */
    async smallestWaiting(copies: number): Promise<Map<string, number>> {
      const rows = await sql<{ target: string; size: string }[]>`
        with waiting as (
          select p.name, p.size from packs p
          where exists (select 1 from pack_locations n where n.pack = p.name and n.location = 'nas' and n.state = 'ok')
            and (select count(*) from pack_locations l
                 where l.pack = p.name and l.state = 'ok'
                   and (l.location like 'staging:%' or l.location like 'volume:%')) < ${copies})
        select t.name as target, min(w.size) as size
        from targets t join waiting w on not exists (
          select 1 from pack_locations l
          where l.pack = w.name and l.location = 'staging:' || t.name and l.state = 'ok')
        where t.role = 'staging'
        group by t.name`;
      return new Map(rows.map((r) => [r.target, Number(r.size)]));
    },

    /** Packs whose only verified off-site copies are at `target` (staged or in its volumes). */
    async onlyCopiesAt(target: string): Promise<Buffer[]> {
      // Its copies: the staging copy, or the copies in its volumes; others are elsewhere.
      const rows = await sql<{ pack: Buffer }[]>`
        select distinct l.pack from pack_locations l
        where (l.location = ${stagingLocation(target)} or l.location like ${`volume:%@${target}`})
          and l.state = 'ok'
          and not exists (select 1 from pack_locations o where o.pack = l.pack and o.state = 'ok'
                          and o.location <> 'nas' and o.location <> ${stagingLocation(target)}
                          and o.location not like ${`volume:%@${target}`})`;
      return rows.map((r) => r.pack);
    },

    /** The packs a snapshot lists, or null when no snapshot has this id. */
    async packsOfSnapshot(id: Buffer): Promise<Buffer[] | null> {
      const [s] = await sql`select 1 from snapshots where id = ${id}`;
      if (!s) return null;
      const rows = await sql<{ pack: Buffer }[]>`
        select pack from snapshot_packs where snapshot = ${id} order by pack`;
      return rows.map((r) => r.pack);
    },

    /** Every location of these packs. */
    async locationsOf(packs: readonly Buffer[]) {
      return sql<{ pack: Buffer; location: string; state: string; verified_at: Date | null }[]>`
        select pack, location, state, verified_at from pack_locations
        where pack = any(${sql.array(packs as Buffer[], 1001)}::bytea[]) order by pack, location`;
    },
  };
}

export type TargetsRepository = ReturnType<typeof targetsRepository>;
