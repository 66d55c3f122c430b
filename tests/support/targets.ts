/**
 * What the end-to-end staging tests set up around a coordinator: a bucket on the S3 test
 * server with an admin client, S3 credentials where the SDK looks for them (the
 * environment, and nothing else), a Google Drive OAuth client and token file for the
 * Drive test server, and the copy policy in config.json.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { filesUnder } from './files.js';
import { start, type S3TestServer } from './s3-server/index.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface Bucket {
  server: S3TestServer;
  admin: S3Client;
  name: string;
  /** Each object under `prefix/` by key (the prefix taken off), with its SHA-256. */
  objects(prefix: string): Promise<Map<string, string>>;
  stop(): Promise<void>;
}

/** Starts the S3 test server (state under `dir`) with one bucket. */
export async function s3Bucket(dir: string, name = 'family'): Promise<Bucket> {
  const server = await start({ dir });
  const admin = new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'admin', secretAccessKey: 'admin' },
  });
  await admin.send(new CreateBucketCommand({ Bucket: name }));
  return {
    server,
    admin,
    name,
    async objects(prefix) {
      const out = new Map<string, string>();
      const list = await admin.send(
        new ListObjectsV2Command({ Bucket: name, Prefix: `${prefix}/` }),
      );
      for (const o of list.Contents ?? []) {
        const body = await admin.send(new GetObjectCommand({ Bucket: name, Key: o.Key! }));
        out.set(o.Key!.slice(prefix.length + 1), sha256(await body.Body!.transformToByteArray()));
      }
      return out;
    },
    async stop() {
      admin.destroy();
      await server.stop();
    },
  };
}

/** Puts S3 credentials in this process's environment (the commands inherit it); returns the undo. */
export function useS3Credentials(dir: string, secret: string): () => void {
  const saved = { ...process.env };
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'kvfamily',
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
    AWS_CONFIG_FILE: join(dir, 'none'),
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  return () => void (process.env = saved);
}

/**
 * Writes a Desktop-app OAuth client whose token endpoint is the Drive test server's, and
 * a token file (0600) holding `refreshToken`; returns the gdrive:// URL of `folder`.
 */
export async function driveTarget(o: {
  dir: string;
  rootUrl: string;
  folder: string;
  refreshToken: string;
  clientSecret?: string;
  /** More URL parameters, as `&name=value…`. */
  extra?: string;
}): Promise<{ url: string; credentials: string; token: string }> {
  const credentials = join(o.dir, 'google-client.json');
  const token = join(o.dir, 'google-token.json');
  const installed = {
    client_id: 'kv-client',
    client_secret: o.clientSecret ?? 'kv-client-secret',
    token_uri: `${o.rootUrl}token`,
  };
  await writeFile(credentials, JSON.stringify({ installed }));
  await writeFile(token, JSON.stringify({ refresh_token: o.refreshToken }), { mode: 0o600 });
  const folder = encodeURIComponent(o.folder);
  const url = `gdrive://${folder}?credentials=${credentials}&token=${token}&api=${o.rootUrl}${o.extra ?? ''}`;
  return { url, credentials, token };
}

/** Sets the copy policy in a coordinator's config.json (before it starts). */
export async function setCopies(dataDir: string, copies: number): Promise<void> {
  const path = join(dataDir, 'config.json');
  const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  await writeFile(path, JSON.stringify({ ...config, minOffsiteCopies: copies }));
}

/** Each pack, manifest, key file and catalog in a coordinator's data directory, with its SHA-256. */
export async function nasObjects(dataDir: string): Promise<Map<string, string>> {
  const nas = new Map<string, string>();
  for (const kind of ['packs', 'snapshots', 'keys', 'catalog'])
    for (const f of await filesUnder(join(dataDir, kind)))
      nas.set(`${kind}/${f}`, sha256(await readFile(join(dataDir, kind, f))));
  return nas;
}
