/** kinvaultd init: data directory, configuration, TLS certificate, database. */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, networkInterfaces, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { KinvaultError } from '@kinvault/protocol';
import { dataPaths, saveConfig, type Config } from '../config.js';
import { initEmbedded, openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { createTls } from '../tls.js';

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `--listen "${value}" is not HOST:PORT (for example 0.0.0.0:7443 or 192.168.1.10:7443).`,
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

export async function runInit(opts: {
  dataDir: string;
  listen: string;
  publicUrl?: string;
  databaseUrl?: string;
}): Promise<void> {
  const dataDir = resolve(opts.dataDir);
  const listen = parseListen(opts.listen);
  const existing = await readdir(dataDir).catch(() => null);
  if (existing?.includes('config.json')) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${dataDir} is already initialised. Start it with "kinvaultd start --data-dir ${dataDir}".`,
    );
  }
  if (existing && existing.length > 0) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${dataDir} is not empty. Give an empty or new directory.`,
    );
  }
  // As root the embedded database runs as "postgres", which must be able to enter it.
  await mkdir(dataDir, { recursive: true, mode: userInfo().uid === 0 ? 0o711 : 0o700 });

  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  const advertised = wildcard ? (lanAddress() ?? hostname()) : listen.host;
  const publicUrl =
    opts.publicUrl ??
    `https://${advertised.includes(':') ? `[${advertised}]` : advertised}:${listen.port}`;
  if (!publicUrl.startsWith('https://')) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `--public-url must start with https:// (got "${publicUrl}").`,
    );
  }
  const config: Config = {
    version: 1,
    listen,
    publicUrl,
    database: opts.databaseUrl
      ? { kind: 'url', url: opts.databaseUrl }
      : {
          kind: 'embedded',
          port: await freePort(),
          password: randomBytes(24).toString('base64url'),
        },
    enrollmentTtlMinutes: 24 * 60,
  };
  const paths = dataPaths(dataDir);
  const hosts = [
    ...new Set([
      new URL(publicUrl).hostname.replace(/^\[|\]$/g, ''),
      hostname(),
      'localhost',
      '127.0.0.1',
      ...(wildcard ? [] : [listen.host]),
    ]),
  ];
  const tls = await createTls(paths.tlsKey, paths.tlsCert, hosts);
  await saveConfig(dataDir, config);
  await mkdir(paths.packs, { recursive: true, mode: 0o700 });
  await mkdir(paths.uploads, { recursive: true, mode: 0o700 });
  console.log(
    `Creating the database${config.database.kind === 'embedded' ? ' (embedded PostgreSQL)' : ''} …`,
  );
  await initEmbedded(dataDir, config, () => {});
  const db = await openDatabase(dataDir, config, () => {});
  try {
    await migrate(db.sql);
  } finally {
    await db.close();
  }
  console.log(`Kinvault coordinator initialised in ${dataDir}
  listens on        ${listen.host}:${listen.port}
  agents connect to ${publicUrl}
  certificate       ${tls.fingerprint} (SHA-256, pinned by agents)
Next:
  kinvaultd start --data-dir ${dataDir}
  kinvaultd device add anna-laptop --data-dir ${dataDir}    # prints a code to paste into "kinvault setup"`);
}
