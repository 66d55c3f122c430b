/** Applies pending migrations in one transaction, under an advisory lock. */
import type { Sql } from 'postgres';
import { migrations, type Migration } from './migrations.js';

const LOCK_ID = 0x6b766c74; // "kvlt"

export async function migrate(
  sql: Sql,
  list: readonly Migration[] = migrations,
): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`create table if not exists schema_migrations (
      id integer primary key, name text not null, applied_at timestamptz not null default now())`;
    const done = new Set(
      (await tx<{ id: number }[]>`select id from schema_migrations`).map((r) => r.id),
    );
    const applied: number[] = [];
    for (const m of [...list].sort((a, b) => a.id - b.id)) {
      if (done.has(m.id)) continue;
      await tx.unsafe(m.sql);
      await tx`insert into schema_migrations (id, name) values (${m.id}, ${m.name})`;
      applied.push(m.id);
    }
    return applied;
  });
}
