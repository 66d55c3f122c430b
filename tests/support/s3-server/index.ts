/**
 * A strict S3 test server on node:http (path-style, 127.0.0.1, random port), state on disk.
 * See README.md for what it implements and how tests drive it.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Ctx, ServerOptions, Tier } from './context.js';
import { S3Error, errors, invalidArgument, invalidRequest } from './errors.js';
import {
  ConnectionCut,
  type FailStatus,
  Faults,
  type OperationPattern,
  cutAfter,
} from './faults.js';
import { completeRestores } from './restore.js';
import { route } from './router.js';
import { Store } from './store.js';
import { errorDocument } from './xml.js';
import { clientGone } from '../client-gone.js';

export interface StartOptions {
  /** Where the state lives; a server started again on it finds everything. */
  dir: string;
  /** Smallest size of every part but the last; default AWS's 5 MiB. Lower it for fast tests. */
  minPartSize?: number;
  /** Largest PutObject or part; default AWS's 5 GiB. */
  maxObjectSize?: number;
  /** The server's clock (ms); default Date.now. Drives restores, their expiry and the x-amz-date check. */
  now?: () => number;
  /** Restores complete by themselves after this many ms (per tier); default: only completeRestores(). */
  restoreDelay?: (tier: Tier) => number | undefined;
  port?: number;
}

/** One request, as the log keeps it. */
export interface LoggedRequest {
  operation: string;
  bucket: string;
  key: string;
  uploadId?: string;
  partNumber?: number;
  /** The payload's declared length (x-amz-decoded-content-length, else Content-Length). */
  bytes: number;
}

export interface S3TestServer {
  /** http://127.0.0.1:<port>, for an S3Client with forcePathStyle: true. */
  endpoint: string;
  /** Requests received per operation (PutObject, UploadPart, …), failed ones included. */
  requests: Record<string, number>;
  /** Requests per x-amz-content-sha256 kind: UNSIGNED-PAYLOAD, STREAMING-…, or "sha256" (a hex digest). */
  payloads: Record<string, number>;
  /** Every request, in the order received (failed and stalled ones included). */
  log: LoggedRequest[];
  /** Requests held by `stallNext` right now, their clients still connected. */
  readonly stalled: number;
  /** The log entries of those requests, in the order received. */
  readonly held: readonly LoggedRequest[];
  /** Unexpected server errors (answered 500 InternalError); tests can assert there are none. */
  internalErrors: unknown[];
  /** The next `count` requests of `operation` ('*': any) answer 503 SlowDown or 500 InternalError. */
  failNext(operation: OperationPattern, count?: number, status?: FailStatus): void;
  /** The next `count` requests of `operation` lose their connection after `afterBytes` body bytes. */
  cutNext(operation: OperationPattern, afterBytes: number, count?: number): void;
  /**
   * After `skip` more requests of `operation`, the next `count` are never answered: they
   * wait until their client goes away (as when it is killed), then are dropped unstored.
   */
  stallNext(operation: OperationPattern, count?: number, skip?: number): void;
  /** Drops the stalls planned that have not begun (those under way stay held). */
  cancelStalls(): void;
  /** Drops the failures planned by `failNext` that have not happened. */
  cancelFailures(): void;
  /** Completes ongoing restores (of a bucket, or one key) now; returns how many. */
  completeRestores(bucket?: string, key?: string): Promise<number>;
  stop(): Promise<void>;
}

const MiB = 1024 * 1024;
const MAX_SKEW_MS = 15 * 60 * 1000;
const DRAIN_LIMIT = 64 * MiB;
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=[^/\s]+\/\d{8}\/[a-z0-9-]+\/s3\/aws4_request, ?SignedHeaders=[a-z0-9;-]+, ?Signature=[0-9a-f]{64}$/;
const PAYLOAD_VALUES = [
  'UNSIGNED-PAYLOAD',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
];

function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : undefined;
}

/** SigV4 header authentication, without checking the signature; any credentials are accepted. */
function authenticate(req: IncomingMessage, url: URL, now: number): void {
  if (url.searchParams.has('X-Amz-Signature'))
    throw errors.notImplemented({ Header: 'X-Amz-Signature' });
  const auth = req.headers.authorization;
  if (auth === undefined) throw errors.accessDenied();
  if (!AUTHORIZATION.test(auth))
    throw new S3Error(
      400,
      'AuthorizationHeaderMalformed',
      'The authorization header is malformed.',
    );
  const date = parseAmzDate(String(req.headers['x-amz-date'] ?? ''));
  if (date === undefined)
    throw new S3Error(
      403,
      'AccessDenied',
      'AWS authentication requires a valid Date or x-amz-date header',
    );
  if (Math.abs(date - now) > MAX_SKEW_MS)
    throw new S3Error(
      403,
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
      {
        RequestTime: String(req.headers['x-amz-date']),
        ServerTime: new Date(now).toISOString(),
      },
    );
  const payload = req.headers['x-amz-content-sha256'];
  if (payload === undefined)
    throw invalidRequest('Missing required header for this request: x-amz-content-sha256');
  if (!PAYLOAD_VALUES.includes(String(payload)) && !/^[0-9a-f]{64}$/.test(String(payload)))
    throw invalidArgument(
      `x-amz-content-sha256 must be ${PAYLOAD_VALUES.join(', ')}, or a valid sha256 value.`,
      'x-amz-content-sha256',
      String(payload),
    );
}

function pathParts(url: URL): { bucket: string; key: string } {
  const rest = url.pathname.slice(1);
  const slash = rest.indexOf('/');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw invalidArgument('The request path is not valid URL encoding.');
    }
  };
  return {
    bucket: decode(slash < 0 ? rest : rest.slice(0, slash)),
    key: slash < 0 ? '' : decode(rest.slice(slash + 1)),
  };
}

function logged(
  operation: string,
  bucket: string,
  key: string,
  query: URLSearchParams,
  req: IncomingMessage,
): LoggedRequest {
  const length = req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length'];
  const part = query.get('partNumber');
  return {
    operation,
    bucket,
    key,
    ...(query.has('uploadId') ? { uploadId: query.get('uploadId')! } : {}),
    ...(part !== null ? { partNumber: Number(part) } : {}),
    bytes: Number(length ?? 0) || 0,
  };
}

export async function start(options: StartOptions): Promise<S3TestServer> {
  const store = await Store.open(options.dir);
  const serverOptions: ServerOptions = {
    minPartSize: options.minPartSize ?? 5 * MiB,
    maxObjectSize: options.maxObjectSize ?? 5 * 1024 * MiB,
    now: options.now ?? Date.now,
    restoreDelay: options.restoreDelay,
  };
  const requests: Record<string, number> = {};
  const internalErrors: unknown[] = [];
  const payloads: Record<string, number> = {};
  const faults = new Faults();
  const log: LoggedRequest[] = [];
  const held: LoggedRequest[] = [];
  const inFlight = new Set<Promise<void>>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', randomBytes(24).toString('base64'));
    res.setHeader('server', 'AmazonS3');
    res.setHeader('date', new Date(serverOptions.now()).toUTCString());
    let resource: Record<string, string> = {};
    try {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const { bucket, key } = pathParts(url);
      resource = { Resource: url.pathname };
      if (Buffer.byteLength(key) > 1024)
        throw new S3Error(400, 'KeyTooLongError', 'Your key is too long');
      const r = route(
        req.method ?? '',
        bucket,
        key,
        url.searchParams,
        req.headers['x-amz-copy-source'] !== undefined,
      );
      requests[r.operation] = (requests[r.operation] ?? 0) + 1;
      const entry = logged(r.operation, bucket, key, url.searchParams, req);
      log.push(entry);
      for (const name of url.searchParams.keys())
        if (name !== 'x-id' && !r.params.includes(name))
          throw errors.notImplemented({ Parameter: name });
      authenticate(req, url, serverOptions.now());
      const payload = String(req.headers['x-amz-content-sha256']);
      const kind = PAYLOAD_VALUES.includes(payload) ? payload : 'sha256';
      payloads[kind] = (payloads[kind] ?? 0) + 1;
      const failure = faults.failure(r.operation);
      if (failure) throw failure;
      if (faults.stall(r.operation)) {
        held.push(entry);
        // Its bytes are read and dropped: a paused socket would not see its client go.
        req.resume();
        await clientGone(req.socket);
        held.splice(held.indexOf(entry), 1);
        throw new ConnectionCut('stalled until the client went away');
      }
      const cut = faults.cut(r.operation);
      const ctx: Ctx = {
        req,
        res,
        store,
        options: serverOptions,
        bucket,
        key,
        query: url.searchParams,
        requestId,
        body: req,
      };
      if (cut !== undefined && r.operation === 'GetObject') ctx.cutResponseAfter = cut;
      else if (cut !== undefined) ctx.body = cutAfter(req, cut, () => req.socket.destroy());
      await r.handler(ctx);
    } catch (error) {
      await sendError(req, res, error, requestId, resource);
    }
  }

  async function sendError(
    req: IncomingMessage,
    res: ServerResponse,
    error: unknown,
    requestId: string,
    resource: Record<string, string>,
  ): Promise<void> {
    if (error instanceof ConnectionCut || req.socket.destroyed) return void res.destroy();
    if (!(error instanceof S3Error)) internalErrors.push(error);
    if (res.headersSent) return void res.destroy();
    const s3error = error instanceof S3Error ? error : errors.internalError();
    const close = await drain(req);
    const headers: Record<string, string> = close ? { connection: 'close' } : {};
    if (req.method === 'HEAD') {
      res.writeHead(s3error.status, headers);
      return void res.end();
    }
    const body = errorDocument(s3error, requestId, s3error.code === 'NoSuchKey' ? {} : resource);
    res.writeHead(s3error.status, {
      ...headers,
      'content-type': 'application/xml',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  }

  /** Reads what is left of a rejected request's body (up to a limit), so the client sees the answer. */
  async function drain(req: IncomingMessage): Promise<boolean> {
    if (req.readableEnded) return false;
    if (Number(req.headers['content-length'] ?? 0) > DRAIN_LIMIT) return true;
    req.resume();
    await Promise.race([once(req, 'end'), once(req, 'close')]).catch(() => undefined);
    return false;
  }

  const server: Server = createServer((req, res) => {
    const p = handle(req, res).catch((error: unknown) => {
      internalErrors.push(error);
      res.destroy();
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  });
  server.requestTimeout = 5 * 60_000;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxConnections = 256;
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  server.unref();
  const { port } = server.address() as { port: number };

  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    payloads,
    log,
    get stalled() {
      return held.length;
    },
    held,
    internalErrors,
    failNext: (operation, count, status) => faults.failNext(operation, count, status),
    cutNext: (operation, afterBytes, count) => faults.cutNext(operation, afterBytes, count),
    stallNext: (operation, count, skip) => faults.stallNext(operation, count, skip),
    cancelStalls: () => faults.cancelStalls(),
    cancelFailures: () => faults.cancelFailures(),
    completeRestores: (bucket, key) => completeRestores(store, serverOptions.now(), bucket, key),
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.allSettled([...inFlight]);
        await closed;
      })()),
  };
}
