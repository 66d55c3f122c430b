/**
 * Request bodies: plain or aws-chunked, checked against x-amz-content-sha256, Content-MD5,
 * x-amz-decoded-content-length and one additional checksum (header or trailer) as S3 does.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { decodeAwsChunked } from './aws-chunked.js';
import {
  type Algorithm,
  algorithmOfHeader,
  createHasher,
  headerName,
  isValidValue,
  parseAlgorithm,
} from './checksums.js';
import { checksumMismatch, errors, invalidRequest } from './errors.js';

type Mode = 'plain' | 'unsigned-trailer' | 'signed' | 'signed-trailer';

/** What the headers say about the body, checked before any byte is read. */
export interface BodyPlan {
  mode: Mode;
  /** The decoded length the client declared. */
  length: number;
  /** Hex SHA-256 the client signed (plain bodies). */
  contentSha256?: string;
  contentMd5?: string;
  /** The additional checksum the client sends, in a header (value known) or a trailer. */
  checksum?: { algorithm: Algorithm; value?: string; trailer?: string };
}

const STREAMING: Record<string, Mode> = {
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER': 'unsigned-trailer',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': 'signed',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': 'signed-trailer',
};

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

export function planBody(req: IncomingMessage): BodyPlan {
  const sha = header(req, 'x-amz-content-sha256')!;
  const mode: Mode = STREAMING[sha] ?? 'plain';
  const plan: BodyPlan = { mode, length: declaredLength(req, mode) };
  if (/^[0-9a-f]{64}$/.test(sha)) plan.contentSha256 = sha;
  const md5 = header(req, 'content-md5');
  if (md5 !== undefined) {
    if (Buffer.from(md5, 'base64').byteLength !== 16)
      throw errors.invalidDigest({ 'Content-MD5': md5 });
    plan.contentMd5 = md5;
  }
  plan.checksum = declaredChecksum(req, mode);
  return plan;
}

function declaredLength(req: IncomingMessage, mode: Mode): number {
  const text =
    mode === 'plain' ? header(req, 'content-length') : header(req, 'x-amz-decoded-content-length');
  if (text === undefined) {
    if (mode === 'plain' && header(req, 'transfer-encoding') === undefined) return 0;
    throw errors.missingContentLength();
  }
  if (!/^\d{1,16}$/.test(text)) throw errors.missingContentLength();
  return Number(text);
}

function declaredChecksum(req: IncomingMessage, mode: Mode): BodyPlan['checksum'] {
  const found: NonNullable<BodyPlan['checksum']>[] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    const algorithm = algorithmOfHeader(name);
    if (!algorithm || typeof value !== 'string') continue;
    if (!isValidValue(algorithm, value))
      throw invalidRequest(`Value for ${name} header is invalid.`);
    found.push({ algorithm, value });
  }
  const trailer = header(req, 'x-amz-trailer')?.trim().toLowerCase();
  if (trailer !== undefined) {
    if (mode !== 'unsigned-trailer' && mode !== 'signed-trailer')
      throw invalidRequest(
        'The x-amz-trailer header is only allowed with a STREAMING-*-TRAILER payload.',
      );
    const algorithm = algorithmOfHeader(trailer);
    if (!algorithm) throw invalidRequest(`The trailer ${trailer} is not supported.`);
    found.push({ algorithm, trailer });
  }
  if (found.length > 1)
    throw invalidRequest(
      'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
    );
  const sdk = header(req, 'x-amz-sdk-checksum-algorithm');
  if (sdk !== undefined && parseAlgorithm(sdk) !== found[0]?.algorithm)
    throw invalidRequest(
      'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.',
    );
  return found[0];
}

/** Where a body goes: a file or memory. */
export interface Sink {
  write(data: Buffer): Promise<void>;
  close(): Promise<void>;
  discard(): Promise<void>;
}

export function fileSink(path: string): Sink {
  const out = createWriteStream(path, { flags: 'wx' });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  return {
    async write(data) {
      if (!out.write(data)) await Promise.race([once(out, 'drain'), failed]);
    },
    async close() {
      out.end();
      await Promise.race([once(out, 'close'), failed]);
    },
    async discard() {
      out.destroy();
      await unlink(path).catch(() => undefined);
    },
  };
}

export function memorySink(): Sink & { data(): Buffer } {
  const parts: Buffer[] = [];
  return {
    write: async (d) => void parts.push(d),
    close: async () => undefined,
    discard: async () => void (parts.length = 0),
    data: () => Buffer.concat(parts),
  };
}

export interface ReceivedBody {
  size: number;
  /** Hex MD5 of the data. */
  md5: string;
  /** The checksum of the data under `algorithm`: the client's (verified) or our own. */
  checksum: { algorithm: Algorithm; value: string; supplied: boolean };
}

export interface ReceiveOptions {
  /** Algorithm to compute when the client sends no checksum. */
  defaultAlgorithm: Algorithm;
  maxSize: number;
  sink: Sink;
}

/** Reads, decodes and verifies the body into the sink; discards it on any failure. */
export async function receiveBody(
  source: AsyncIterable<Buffer>,
  plan: BodyPlan,
  options: ReceiveOptions,
): Promise<ReceivedBody> {
  if (plan.length > options.maxSize)
    throw errors.entityTooLarge({ MaxSizeAllowed: String(options.maxSize) });
  try {
    const received = await consume(source, plan, options);
    await options.sink.close();
    return received;
  } catch (error) {
    await options.sink.discard();
    throw error;
  }
}

async function consume(source: AsyncIterable<Buffer>, plan: BodyPlan, options: ReceiveOptions) {
  const algorithm = plan.checksum?.algorithm ?? options.defaultAlgorithm;
  const hasher = createHasher(algorithm);
  const md5 = createHash('md5');
  const sha256 = plan.contentSha256 ? createHash('sha256') : undefined;
  const trailers = new Map<string, string>();
  const data =
    plan.mode === 'plain'
      ? source
      : decodeAwsChunked(source, { signed: plan.mode.startsWith('signed') }, trailers);
  let size = 0;
  for await (const chunk of data) {
    size += chunk.byteLength;
    if (size > plan.length) throw errors.incompleteBody();
    hasher.update(chunk);
    md5.update(chunk);
    sha256?.update(chunk);
    await options.sink.write(chunk);
  }
  if (size !== plan.length) throw errors.incompleteBody();
  if (sha256 && sha256.digest('hex') !== plan.contentSha256) throw errors.contentSha256Mismatch();
  const md5Raw = md5.digest();
  if (plan.contentMd5 !== undefined && md5Raw.toString('base64') !== plan.contentMd5)
    throw errors.md5Mismatch();
  const value = (await hasher.digest()).toString('base64');
  const expected = plan.checksum?.trailer
    ? trailers.get(plan.checksum.trailer)
    : plan.checksum?.value;
  if (plan.checksum?.trailer) {
    if (expected === undefined)
      throw invalidRequest(`The trailer ${plan.checksum.trailer} was declared but not sent.`);
    if (!isValidValue(algorithm, expected))
      throw invalidRequest(`Value for ${headerName(algorithm)} trailer is invalid.`);
  }
  if (expected !== undefined && expected !== value) throw checksumMismatch(algorithm);
  return {
    size,
    md5: md5Raw.toString('hex'),
    checksum: { algorithm, value, supplied: plan.checksum !== undefined },
  };
}
