/** Reading what a data directory or a target holds, for tests. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import postgres from 'postgres';

/** Every file below `dir` (relative paths, sorted); none if it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** A connection to the embedded database of a data directory (its server must run). */
export async function databaseOf(dataDir: string): Promise<postgres.Sql> {
  const config = JSON.parse(await readFile(join(dataDir, 'config.json'), 'utf8')) as {
    database: { port: number; password: string };
  };
  return postgres({
    host: '127.0.0.1',
    port: config.database.port,
    user: 'kinvault',
    password: config.database.password,
    database: 'kinvault',
    onnotice: () => {},
  });
}
