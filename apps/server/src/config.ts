/**
 * The coordinator's configuration: `config.json` in the data directory, mode 0600
 * (it holds the embedded database password). Loaded once, validated, frozen.
 */
import { open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { KinvaultError } from '@kinvault/protocol';

export const DEFAULT_PORT = 7443;

export const ConfigSchema = z
  .object({
    version: z.literal(1),
    listen: z
      .object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) })
      .strict(),
    /** The address agents use; goes into enrollment codes. */
    publicUrl: z.string().url().startsWith('https://'),
    database: z.discriminatedUnion('kind', [
      z
        .object({
          kind: z.literal('embedded'),
          port: z.number().int().min(1).max(65535),
          password: z.string().min(16),
        })
        .strict(),
      z.object({ kind: z.literal('url'), url: z.string().startsWith('postgres') }).strict(),
    ]),
    /** How long an enrollment code stays valid. */
    enrollmentTtlMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(24 * 60),
    /** Incomplete uploads older than this are deleted (the agent starts them again). */
    uploadExpiryHours: z
      .number()
      .positive()
      .max(24 * 365)
      .default(24),
    /** Verified copies at staging targets (each on a different one) a pack needs. */
    minOffsiteCopies: z.number().int().min(1).max(10).default(1),
  })
  .strict();

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Where everything lives inside the data directory. */
export function dataPaths(dataDir: string) {
  return {
    config: join(dataDir, 'config.json'),
    /** Exists while "kinvaultd init" has not finished. */
    initMarker: join(dataDir, '.init-incomplete'),
    tlsKey: join(dataDir, 'tls', 'key.pem'),
    tlsCert: join(dataDir, 'tls', 'cert.pem'),
    postgres: join(dataDir, 'postgres'),
    packs: join(dataDir, 'packs'),
    uploads: join(dataDir, 'uploads'),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export async function loadConfig(dataDir: string): Promise<Config> {
  const path = dataPaths(dataDir).config;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && (await stat(dataPaths(dataDir).initMarker).catch(() => null)))
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `"kinvaultd init" did not finish in ${dataDir}. Run "kinvaultd init --data-dir ${dataDir}" again (with the same options): it removes what the unfinished one left first.`,
      );
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      code === 'ENOENT'
        ? `${dataDir} is not a Kinvault data directory (no config.json). Run "kinvaultd init --data-dir ${dataDir}" first.`
        : `Cannot read ${path}: ${code ?? String(error)}.`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${path} is not valid JSON. Fix it, or restore it from a backup of the data directory.`,
    );
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
      .join('; ');
    throw new KinvaultError('INVALID_ARGUMENT', `${path} is not a valid configuration: ${issues}.`);
  }
  return deepFreeze(parsed.data);
}

/** Writes config.json atomically (a temporary file renamed into place, both synced). */
export async function saveConfig(dataDir: string, config: Config): Promise<void> {
  const checked = ConfigSchema.parse(config);
  const path = dataPaths(dataDir).config;
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(JSON.stringify(checked, null, 2) + '\n');
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
