/** SQL for ISO volumes at archive targets (volumes, volume_packs, volume_files). */
import type { PendingQuery } from 'postgres';
import { atomically, type Db } from './db.js';

export type VolumeState = 'sealed' | 'uploading' | 'archived' | 'verified';

export interface VolumeRow {
  id: number;
  target: string;
  key: string;
  state: VolumeState;
  size: number;
  createdAt: Date;
  sha256: string | null;
  partSize: number | null;
  parts: number | null;
  partsDone: number;
  providerSha256: string | null;
  storageClass: string | null;
  uploadedAt: Date | null;
  verifiedAt: Date | null;
  lastError: string | null;
  packs: number;
  packBytes: number;
}

export interface VolumeFile {
  path: string;
  bytes: Buffer;
  offset: number;
}

export interface VolumePack {
  name: string;
  size: number;
  offset: number;
}

/** What a sealed volume holds, in the order its data lies in the image. */
export interface VolumeContent {
  files: VolumeFile[];
  packs: VolumePack[];
}

/** The location a pack's copy in a volume has (pack_locations.location). */
export const volumeLocation = (id: number, target: string) => `volume:${id}@${target}`;

interface Row {
  id: string;
  target: string;
  key: string;
  state: VolumeState;
  size: string;
  created_at: Date;
  sha256: Buffer | null;
  part_size: string | null;
  parts: number | null;
  parts_done: number;
  provider_sha256: string | null;
  storage_class: string | null;
  uploaded_at: Date | null;
  verified_at: Date | null;
  last_error: string | null;
  packs: string;
  pack_bytes: string;
}

const toVolume = (r: Row): VolumeRow => ({
  id: Number(r.id),
  target: r.target,
  key: r.key,
  state: r.state,
  size: Number(r.size),
  createdAt: r.created_at,
  sha256: r.sha256?.toString('hex') ?? null,
  partSize: r.part_size === null ? null : Number(r.part_size),
  parts: r.parts,
  partsDone: r.parts_done,
  providerSha256: r.provider_sha256,
  storageClass: r.storage_class,
  uploadedAt: r.uploaded_at,
  verifiedAt: r.verified_at,
  lastError: r.last_error,
  packs: Number(r.packs),
  packBytes: Number(r.pack_bytes),
});

/** What sealing does, on the transaction that holds the target's lock. */
function sealingOps(sql: Db) {
  return {
    /**
     * The packs a volume at `target` may take, oldest first: on the NAS, intact, in no
     * volume of that target yet.
     */
    async candidates(target: string): Promise<{ name: string; size: number }[]> {
      const rows = await sql<{ name: Buffer; size: string }[]>`
        select p.name, p.size from packs p
        where exists (select 1 from pack_locations n where n.pack = p.name
                      and n.location = 'nas' and n.state = 'ok')
          and not exists (select 1 from volume_packs vp join volumes v on v.id = vp.volume
                          where vp.pack = p.name and v.target = ${target})
        order by p.created_at, p.name`;
      return rows.map((r) => ({ name: r.name.toString('hex'), size: Number(r.size) }));
    },

    /**
     * Records a sealed volume; returns its id. Its layout (key, size, content) is made
     * by `layout` once the id is known (the image carries it).
     */
    async create(v: {
      target: string;
      createdAt: Date;
      layout(id: number): { key: string; size: number; content: VolumeContent };
    }): Promise<number> {
      const [row] = await sql<{ id: string }[]>`
        insert into volumes (target, key, size, created_at)
        values (${v.target}, ${`sealing-${process.pid}`}, 1, ${v.createdAt}) returning id`;
      const id = Number(row!.id);
      const { key, size, content } = v.layout(id);
      await sql`update volumes set key = ${key}, size = ${size} where id = ${id}`;
      const packs = content.packs.map((p, i) => ({
        volume: id,
        pack: Buffer.from(p.name, 'hex'),
        position: i,
        byte_offset: p.offset,
      }));
      for (let i = 0; i < packs.length; i += 1000)
        await sql`insert into volume_packs ${sql(packs.slice(i, i + 1000))}`;
      for (const [i, f] of content.files.entries())
        await sql`insert into volume_files (volume, position, path, bytes, byte_offset)
                  values (${id}, ${i}, ${f.path}, ${f.bytes}, ${f.offset})`;
      return id;
    },
  };
}

export type SealingOps = ReturnType<typeof sealingOps>;

export function volumesRepository(sql: Db) {
  const select = (where: PendingQuery<Row[]>) => sql<Row[]>`
    select v.*,
      (select count(*) from volume_packs vp where vp.volume = v.id) as packs,
      coalesce((select sum(p.size) from volume_packs vp join packs p on p.name = vp.pack
                where vp.volume = v.id), 0) as pack_bytes
    from volumes v ${where} order by v.id`;

  return {
    async list(target?: string): Promise<VolumeRow[]> {
      const rows = await select(target === undefined ? sql`` : sql`where v.target = ${target}`);
      return rows.map(toVolume);
    },

    async get(id: number): Promise<VolumeRow | null> {
      const [row] = await select(sql`where v.id = ${id}`);
      return row ? toVolume(row) : null;
    },

    /**
     * Runs `work` in a transaction that holds the target's sealing lock, so that two
     * processes (the coordinator's job, `volumes seal`) never put a pack in two volumes.
     */
    sealing<T>(target: string, work: (tx: SealingOps) => Promise<T>): Promise<T> {
      return atomically(sql, async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtext(${`kinvault volume ${target}`}))`;
        return work(sealingOps(tx));
      });
    },

    /** What a volume holds (its files' bytes only while it is not verified). */
    async content(id: number): Promise<VolumeContent> {
      const files = await sql<{ path: string; bytes: Buffer; byte_offset: string }[]>`
        select path, bytes, byte_offset from volume_files where volume = ${id} order by position`;
      const packs = await sql<{ name: Buffer; size: string; byte_offset: string }[]>`
        select p.name, p.size, vp.byte_offset from volume_packs vp join packs p on p.name = vp.pack
        where vp.volume = ${id} order by vp.position`;
      return {
        files: files.map((f) => ({ path: f.path, bytes: f.bytes, offset: Number(f.byte_offset) })),
        packs: packs.map((p) => ({
          name: p.name.toString('hex'),
          size: Number(p.size),
          offset: Number(p.byte_offset),
        })),
      };
    },

    /** The image was made once: its SHA-256, and what the provider's checksum should be. */
    async built(
      id: number,
      b: { sha256: string; partSize: number; parts: number; providerSha256: string | null },
    ) {
      await sql`
        update volumes set state = 'uploading', sha256 = ${Buffer.from(b.sha256, 'hex')},
          part_size = ${b.partSize}, parts = ${b.parts}, provider_sha256 = ${b.providerSha256},
          last_error = null
        where id = ${id}`;
    },

    async partsDone(id: number, done: number): Promise<void> {
      await sql`update volumes set parts_done = ${done} where id = ${id}`;
    },

    async uploaded(id: number, storageClass: string | null): Promise<void> {
      await sql`update volumes set state = 'archived', parts_done = parts, uploaded_at = now(),
                storage_class = ${storageClass}, last_error = null where id = ${id}`;
    },

    async failed(id: number, error: string): Promise<void> {
      await sql`update volumes set last_error = ${error} where id = ${id}`;
    },

    /** Back to be uploaded again from the start (what is at the target did not verify). */
    async reset(id: number, error: string): Promise<void> {
      await sql`update volumes set state = 'uploading', parts_done = 0, uploaded_at = null,
                last_error = ${error} where id = ${id}`;
    },

    /**
     * Verified: its packs get the location `volume:<id>@<target>`, and the files kept to
     * make it again go (but the MANIFEST, which restores read).
     */
    async verified(id: number, target: string): Promise<void> {
      await atomically(sql, async (tx) => {
        await tx`update volumes set state = 'verified', verified_at = now(), last_error = null
                 where id = ${id}`;
        await tx`
          insert into pack_locations (pack, location, state, verified_at)
          select pack, ${volumeLocation(id, target)}, 'ok', now() from volume_packs
          where volume = ${id}
          on conflict (pack, location) do update
          set state = 'ok', verified_at = now(), changed_at = now(), detail = null`;
        await tx`delete from volume_files where volume = ${id} and path <> 'MANIFEST'`;
      });
    },

    /**
     * The staging copies of a volume's packs that may go: each pack keeps `copies`
     * verified off-site copies (staging and volumes) without the ones listed. The last
     * staging targets in placement order lose theirs first.
     */
    async evictable(
      id: number,
      copies: number,
    ): Promise<{ pack: string; target: string; url: string }[]> {
      const rows = await sql<{ pack: Buffer; target: string; url: string }[]>`
        with offsite as (
          select l.pack, l.location, t.name as target, t.url, t.position,
            count(*) over (partition by l.pack) as copies,
            row_number() over (partition by l.pack order by t.position desc nulls last) as nth
          from pack_locations l
          join volume_packs vp on vp.pack = l.pack and vp.volume = ${id}
          left join targets t on l.location = 'staging:' || t.name
          where l.state = 'ok' and (l.location like 'staging:%' or l.location like 'volume:%'))
        select pack, target, url from offsite
        where target is not null and copies - nth >= ${copies}
        order by pack, position`;
      return rows.map((r) => ({ pack: r.pack.toString('hex'), target: r.target, url: r.url }));
    },
  };
}

export type VolumesRepository = ReturnType<typeof volumesRepository>;
