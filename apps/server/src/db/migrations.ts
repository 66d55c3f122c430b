/**
 * Numbered schema migrations, applied in order on start. Never edit one that has
 * shipped; add the next number. PostgreSQL is the index and coordination layer: every
 * row here can be rebuilt from the packs, snapshots and key files in storage.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export const migrations: readonly Migration[] = [
  {
    id: 1,
    name: 'devices, enrollment, packs, blobs, snapshots, key files',
    sql: `
      create table devices (
        id bigserial primary key,
        name text not null unique,
        token_hash bytea unique,              -- SHA-256 of the device token; null until enrolled
        created_at timestamptz not null default now(),
        enrolled_at timestamptz,
        revoked_at timestamptz,
        last_seen_at timestamptz
      );
      create table enrollments (
        token_hash bytea primary key,         -- SHA-256 of the single-use enrollment token
        device_id bigint not null references devices(id) on delete cascade,
        expires_at timestamptz not null,
        used_at timestamptz
      );
      create table packs (
        name bytea primary key check (length(name) = 32),   -- SHA-256 of the pack file
        size bigint not null check (size > 0),
        device_id bigint references devices(id),
        created_at timestamptz not null default now()
      );
      create table blobs (
        id bytea primary key check (length(id) = 32),       -- keyed blob id
        type smallint not null check (type in (1, 2)),
        pack bytea not null references packs(name)
      );
      create index blobs_pack on blobs(pack);
      create table snapshots (
        id bytea primary key check (length(id) = 32),       -- SHA-256 of the sealed manifest
        device_id bigint not null references devices(id),
        sealed bytea not null,
        created_at timestamptz not null default now()
      );
      create table snapshot_packs (
        snapshot bytea not null references snapshots(id) on delete cascade,
        pack bytea not null references packs(name),
        primary key (snapshot, pack)
      );
      create table key_files (
        kind smallint primary key check (kind in (1, 2)),   -- 1 passphrase, 2 recovery code
        bytes bytea not null,
        updated_at timestamptz not null default now()
      );
      create table household (
        id smallint primary key default 1 check (id = 1),
        repository_id bytea not null check (length(repository_id) = 16),
        box_public_key bytea not null check (length(box_public_key) = 32),
        created_at timestamptz not null default now()
      );
    `,
  },
  {
    id: 2,
    name: 'pack declarations',
    sql: `
      -- What an agent says a pack holds, before it uploads it; the upload's completion
      -- turns the declaration into rows of packs and blobs in one transaction.
      create table pack_declarations (
        name bytea primary key check (length(name) = 32),
        device_id bigint not null references devices(id),
        size bigint not null check (size > 0),
        entries bytea not null,               -- count x (type u8 || id[32])
        created_at timestamptz not null default now()
      );
    `,
  },
  {
    id: 3,
    name: 'snapshot totals reported by agents',
    sql: `
      -- Aggregates only (no names, no per-file sizes), for status and the dedup ratio.
      alter table snapshots add column files bigint not null default 0;
      alter table snapshots add column logical_bytes bigint not null default 0;
    `,
  },
  {
    id: 4,
    name: 'pack locations with their state; a blob may be in several packs',
    sql: `
      -- Where each copy of a pack is and what was last found there. 'nas' is the pack
      -- store in the data directory; later tiers add their own locations. A pack is
      -- available when some copy is 'ok'; dedup and snapshot commits count only those.
      create table pack_locations (
        pack bytea not null references packs(name),
        location text not null,
        state text not null check (state in ('ok', 'damaged', 'missing')),
        verified_at timestamptz,             -- when the bytes last hashed to the name
        changed_at timestamptz not null default now(),
        detail text,                         -- what was found, for damaged and missing
        primary key (pack, location)
      );
      insert into pack_locations (pack, location, state, verified_at)
        select name, 'nas', 'ok', created_at from packs;
      -- A blob whose pack was lost is stored again in a new pack: both rows stay, and
      -- lookups pick an available one.
      alter table blobs drop constraint blobs_pkey;
      alter table blobs add primary key (id, pack);
      -- Each device declares for itself: another device's declaration of the same name
      -- must not replace this one's (its upload would be refused as undeclared).
      alter table pack_declarations drop constraint pack_declarations_pkey;
      alter table pack_declarations add primary key (name, device_id);
    `,
  },
  {
    id: 5,
    name: 'household signing key; key file history',
    sql: `
      -- The household's Ed25519 public key (derived from the master key on agents): a key
      -- file is replaced only with a signature it verifies. Null for a household created
      -- before this migration: its key files cannot be replaced through the coordinator.
      alter table household add column sign_public_key bytea
        check (sign_public_key is null or length(sign_public_key) = 32);
      -- Counts the changes of each key file; a replacement is signed for one generation.
      alter table key_files add column generation bigint not null default 0;
      -- Every key file that was replaced, so that a replacement can be undone.
      create table key_file_history (
        id bigserial primary key,
        kind smallint not null check (kind in (1, 2)),
        bytes bytea not null,                     -- the key file as it was before
        replaced_at timestamptz not null default now(),
        replaced_by text not null,                -- the device, or 'kinvaultd keys restore'
        signature bytea                           -- the household's signature of the change
      );
    `,
  },
  {
    id: 6,
    name: 'background jobs',
    sql: `
      -- Work that must survive restarts (staging, volumes, checks). Enqueued in the same
      -- transaction as the change that causes it; claimed with FOR UPDATE SKIP LOCKED and
      -- leased; a lease that runs out (its worker died) is reclaimed. Done jobs are deleted.
      create table jobs (
        id bigserial primary key,
        kind text not null,
        key text not null,                   -- at most one pending job per kind and key
        payload jsonb not null default '{}',
        state text not null default 'pending'
          check (state in ('pending', 'running', 'failed')),
        attempts integer not null default 0,
        max_attempts integer not null default 12,
        run_after timestamptz not null default now(),
        locked_by text,
        locked_until timestamptz,
        last_error text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      -- (running jobs do not count: work enqueued while its job runs must run again)
      create unique index jobs_pending on jobs (kind, key) where state = 'pending';
      create index jobs_due on jobs (run_after) where state = 'pending';
    `,
  },
  {
    id: 7,
    name: 'storage targets and the objects copied to them',
    sql: `
      -- Places off the NAS that hold copies (design §19.3). A pack's copy at a target is
      -- a row of pack_locations with location 'staging:<name>'; other objects (snapshot
      -- manifests, key files, catalogs) are rows of target_objects.
      create table targets (
        name text primary key check (name ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
        url text not null,
        role text not null check (role in ('staging', 'archive')),
        quota_bytes bigint check (quota_bytes is null or quota_bytes > 0),
        position serial,                     -- the order copies are placed in
        created_at timestamptz not null default now(),
        last_success_at timestamptz,
        last_error text,
        failing_since timestamptz            -- null while the last call succeeded
      );
      create table target_objects (
        target text not null references targets(name) on delete cascade,
        key text not null,
        size bigint not null,
        sha256 bytea not null check (length(sha256) = 32),
        verified_at timestamptz not null default now(),
        primary key (target, key)
      );
    `,
  },
  {
    id: 8,
    name: 'targets the provider says are full; traffic per target',
    sql: `
      -- Set when the provider (not our quota) refused a write for want of room; cleared by
      -- the next pack copy that succeeds there. full_checked_at: when it last said so.
      alter table targets add column full_since timestamptz;
      alter table targets add column full_checked_at timestamptz;
      alter table targets add column full_reason text;
      -- What the coordinator sent to and received from each target, in all.
      alter table targets add column requests bigint not null default 0;
      alter table targets add column bytes_sent bigint not null default 0;
      alter table targets add column bytes_received bigint not null default 0;
    `,
  },
  {
    id: 9,
    name: 'uploads under way at targets',
    sql: `
      -- The state of an upload to a target that has not completed (an S3 multipart
      -- upload's id, a Google Drive session URI), so that a restarted coordinator goes on
      -- with it rather than starting over. Owned by the store adapter, opaque here. A
      -- Drive session URI grants uploading by itself: it is never shown or logged.
      create table upload_sessions (
        target text not null references targets(name) on delete cascade,
        key text not null,
        state text not null,
        updated_at timestamptz not null default now(),
        primary key (target, key)
      );
    `,
  },
  {
    id: 10,
    name: 'ISO volumes at archive targets',
    sql: `
      -- An archive target packs packs into ISO volumes of about this many bytes.
      alter table targets add column volume_size bigint
        check (volume_size is null or volume_size >= 1048576);
      -- One ISO 9660 image at an archive target, one object there (design §21). Its bytes
      -- are a function of its rows here and of its packs: a crashed upload makes them
      -- again from the first part the provider lacks.
      create table volumes (
        id bigserial primary key,
        target text not null references targets(name) on delete cascade,
        key text not null,                     -- the object's key at the target
        state text not null default 'sealed'
          check (state in ('sealed', 'uploading', 'archived', 'verified')),
        size bigint not null check (size > 0),
        created_at timestamptz not null,       -- the image's own time (its clock)
        sha256 bytea check (sha256 is null or length(sha256) = 32),  -- once built
        part_size bigint,                      -- the target's, for this size
        parts integer,
        parts_done integer not null default 0,
        provider_sha256 text,                  -- S3's checksum of it as it should read
        storage_class text,
        uploaded_at timestamptz,
        verified_at timestamptz,
        last_error text,
        unique (target, key)
      );
      -- The packs in a volume, at the byte offsets of the image (its MANIFEST says the same).
      create table volume_packs (
        volume bigint not null references volumes(id) on delete cascade,
        pack bytea not null references packs(name),
        position integer not null,
        byte_offset bigint not null,
        primary key (volume, pack)
      );
      create index volume_packs_pack on volume_packs(pack);
      -- The other files of a volume (README, key files, catalog, manifests, MANIFEST) with
      -- their bytes, while the image may have to be made again; dropped once verified.
      create table volume_files (
        volume bigint not null references volumes(id) on delete cascade,
        position integer not null,
        path text not null,
        bytes bytea not null,
        byte_offset bigint not null,
        primary key (volume, position)
      );
    `,
  },
];
