/**
 * S3 target URLs: `s3://bucket/prefix?endpoint=https://…&region=…&storageClass=…&forcePathStyle=true&partSize=32MiB`.
 * `partSize` (5 MiB to 5 GiB, 32 MiB by default): bodies up to it go in one PutObject,
 * larger ones as multipart uploads in parts of it. Parsing only (no SDK). Credentials never come from the URL: the adapter takes them from
 * the SDK's default chain (environment, shared profile, container or instance role).
 */
import { KinvaultError } from '@kinvault/protocol';
import { formatUrlSize, parseUrlSize } from '../sizes.js';

export const STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Classes whose objects must be restored before a get. */
export const ARCHIVED_CLASSES: ReadonlySet<StorageClass> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export interface S3Target {
  bucket: string;
  /** Where keys live in the bucket, without a trailing "/"; "" for the bucket's root. */
  prefix: string;
  /** An S3-compatible service's URL (MinIO, Backblaze, R2…); undefined: AWS. */
  endpoint: string | undefined;
  region: string;
  storageClass: StorageClass;
  forcePathStyle: boolean;
  /** Parts of multipart uploads, in bytes; undefined: the adapter's default (32 MiB). */
  partSize: number | undefined;
  /** The URL in canonical form, for messages (it holds no credentials). */
  label: string;
}

const PARAMETERS = ['endpoint', 'region', 'storageClass', 'forcePathStyle', 'partSize'] as const;
const MiB = 2 ** 20;
/** S3's bounds for a part (every one but the last). */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SEGMENT = /^[a-z0-9][a-z0-9._-]*$/;
const REGION = /^[a-z0-9][a-z0-9-]{0,62}$/;
const EXAMPLE = 's3://bucket/prefix?region=eu-west-1';

const invalid = (message: string) => new KinvaultError('INVALID_ARGUMENT', message);

/** Parses an s3:// URL; INVALID_ARGUMENT naming what is wrong (never echoing a secret). */
export function parseS3Url(url: URL): S3Target {
  if (url.protocol !== 's3:')
    throw invalid(`An S3 target URL starts with s3://, as in ${EXAMPLE}.`);
  if (url.username || url.password)
    throw invalid(
      'An S3 target URL must not hold credentials (they were not stored). Give them to kinvaultd as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment, a profile in ~/.aws/credentials (AWS_PROFILE), or an instance or container role.',
    );
  if (url.port) throw invalid(`An S3 target URL has no port; give ?endpoint=https://host:port.`);
  if (url.hash) throw invalid(`An S3 target URL has no #fragment.`);
  const bucket = url.hostname;
  if (!BUCKET.test(bucket) || bucket.includes('..'))
    throw invalid(
      `"${bucket.slice(0, 80)}" is not an S3 bucket name: 3 to 63 lowercase letters, digits, "." and "-", as in ${EXAMPLE}.`,
    );
  const prefix = parsePrefix(url.pathname);
  const params = parseParameters(url.searchParams);
  const target: Omit<S3Target, 'label'> = {
    bucket,
    prefix,
    endpoint: params.endpoint === undefined ? undefined : parseEndpoint(params.endpoint),
    region: parseRegion(params.region ?? 'us-east-1'),
    storageClass: parseStorageClass(params.storageClass ?? 'STANDARD'),
    forcePathStyle: parseBoolean('forcePathStyle', params.forcePathStyle ?? 'false'),
    partSize: params.partSize === undefined ? undefined : parsePartSize(params.partSize),
  };
  return { ...target, label: labelOf(target, params) };
}

function parsePrefix(pathname: string): string {
  let path: string;
  try {
    path = decodeURIComponent(pathname).replace(/^\/+/, '').replace(/\/$/, '');
  } catch {
    throw invalid('The prefix of an S3 target URL is not valid URL encoding.');
  }
  if (path === '') return '';
  const segments = path.split('/');
  if (path.length > 256 || segments.some((s) => !SEGMENT.test(s) || s === '..'))
    throw invalid(
      `"${path.slice(0, 80)}" is not a prefix for an S3 target: folders of lowercase letters, digits, ".", "_" and "-", separated by "/".`,
    );
  return path;
}

type Parameters = Partial<Record<(typeof PARAMETERS)[number], string>>;

function parseParameters(search: URLSearchParams): Parameters {
  const out: Parameters = {};
  for (const [name, value] of search) {
    if (!(PARAMETERS as readonly string[]).includes(name))
      throw invalid(
        `"${name.slice(0, 40)}" is not a parameter of an S3 target URL (known: ${PARAMETERS.join(', ')}).`,
      );
    const known = name as (typeof PARAMETERS)[number];
    if (out[known] !== undefined) throw invalid(`The S3 target URL gives ${name} twice.`);
    out[known] = value;
  }
  return out;
}

function parseEndpoint(text: string): string {
  let endpoint: URL;
  try {
    endpoint = new URL(text);
  } catch {
    throw invalid('The endpoint of an S3 target is a URL, as in endpoint=https://s3.example.com.');
  }
  if (endpoint.username || endpoint.password)
    throw invalid(
      'The endpoint of an S3 target must not hold credentials (they were not stored); give them to kinvaultd in its environment or a profile.',
    );
  if (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:')
    throw invalid('The endpoint of an S3 target is an https:// (or http://) URL.');
  if (endpoint.search || endpoint.hash || (endpoint.pathname !== '/' && endpoint.pathname !== ''))
    throw invalid(
      'The endpoint of an S3 target is a scheme, host and port only, as in endpoint=https://s3.example.com:9000.',
    );
  return endpoint.origin;
}

function parseRegion(text: string): string {
  if (!REGION.test(text))
    throw invalid(
      `"${text.slice(0, 40)}" is not a region: lowercase letters, digits and "-", as in region=eu-west-1.`,
    );
  return text;
}

function parseStorageClass(text: string): StorageClass {
  if (!(STORAGE_CLASSES as readonly string[]).includes(text))
    throw invalid(
      `"${text.slice(0, 40)}" is not a storageClass (known: ${STORAGE_CLASSES.join(', ')}).`,
    );
  return text as StorageClass;
}

function parsePartSize(text: string): number {
  const bytes = parseUrlSize(text);
  if (bytes === null || bytes < MIN_PART_SIZE || bytes > MAX_PART_SIZE)
    throw invalid(
      `partSize=${text.slice(0, 40)} is not a part size: 5MiB to 5GiB (S3's bounds), as in partSize=32MiB.`,
    );
  return bytes;
}

function parseBoolean(name: string, text: string): boolean {
  if (text !== 'true' && text !== 'false') throw invalid(`${name} is true or false.`);
  return text === 'true';
}

function labelOf(target: Omit<S3Target, 'label'>, params: Parameters): string {
  // Every value is checked above to need no escaping, so the label reads as it was typed.
  const query = [
    target.endpoint && `endpoint=${target.endpoint}`,
    params.region !== undefined && `region=${target.region}`,
    params.storageClass !== undefined && `storageClass=${target.storageClass}`,
    params.forcePathStyle !== undefined && `forcePathStyle=${target.forcePathStyle}`,
    target.partSize !== undefined && `partSize=${formatUrlSize(target.partSize)}`,
  ].filter(Boolean);
  return `s3://${target.bucket}/${target.prefix}${query.length ? `?${query.join('&')}` : ''}`;
}

/**
 * Above the largest pack (a 16 MiB blob area, one more chunk of up to 8 MiB, its
 * header: ~24 MiB), so every pack goes in one PutObject; at 16 MiB most packs (just
 * over 16 MiB) went as a 4-request multipart upload with a tiny second part.
 */
export const DEFAULT_PART_SIZE = 32 * MiB;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;

/** The part size of a multipart upload of `size` bytes: so that it stays under 10,000 parts. */
export const partSizeFor = (partSize: number, size: number) =>
  Math.max(partSize, Math.ceil(size / MAX_PARTS));

/** What an S3 store can do, from its URL alone (the adapter loads the SDK). */
export function s3Capabilities(target: S3Target) {
  return {
    rangedReads: true,
    needsRestore: ARCHIVED_CLASSES.has(target.storageClass),
    maxObjectBytes: 5 * 1024 ** 4, // S3's limit per object
    recordsSha256: true,
    storageClass: target.storageClass,
  };
}
