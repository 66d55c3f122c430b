/**
 * A Google Drive v3 test server: see README.md. `start()` listens on 127.0.0.1 on a random
 * port; the state lives under `dir`, so a server started again on it carries on.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Settings } from './context.js';
import { makeHandler, type Counters, type FaultKind, type LoggedRequest } from './router.js';
import { DiskState } from './state.js';

export type { FaultKind, LoggedRequest } from './router.js';
export { CHUNK_UNIT } from './uploads.js';

export interface StartOptions {
  dir: string;
  /** Storage limit reported by about.get and enforced on uploads; 15 GiB by default. */
  quotaBytes?: number;
  /** How long a resumable session lives; a week by default. */
  sessionTtlMs?: number;
  /** Only these access tokens are accepted (any bearer token when unset). */
  validTokens?: string[];
  /** Refresh tokens POST /token accepts (any when unset; those it issues are added). */
  refreshTokens?: string[];
  /** OAuth clients (id → secret) the consent page and /token know (any when unset). */
  clients?: Record<string, string>;
}

export interface DriveServer {
  /** Ends with '/', like the googleapis default 'https://www.googleapis.com/'. */
  rootUrl: string;
  /** Requests received per operation ('files.list', 'upload.resumable.chunk', …). */
  requests: Record<string, number>;
  /** Request-body bytes received per operation. */
  bytesReceived: Record<string, number>;
  /** Every request in the order received; session PUTs with session, file name and range. */
  log: LoggedRequest[];
  /** Requests held by `stallNext` right now, their clients still connected. */
  readonly stalled: number;
  /** The log entries of those requests, in the order received. */
  readonly held: readonly LoggedRequest[];
  /**
   * After `skip` more requests of `op`, the next `count` are never answered: they wait
   * until their client goes away (as when it is killed), then are dropped unstored.
   */
  stallNext(op: string, count?: number, skip?: number): void;
  /** Drops the stalls planned that have not begun (those under way stay held). */
  cancelStalls(): void;
  /** Makes the next `times` requests of `op` fail with the given error. */
  fail(op: string, times: number, kind: FaultKind): void;
  /** Drops the faults planned that have not happened yet. */
  clearFaults(): void;
  setQuota(bytes: number): void;
  setSessionTtl(ms: number): void;
  /** Drops the connection of the next resumable chunk after `bytes` body bytes. */
  cutNextChunkAfter(bytes: number): void;
  /** The accepted access tokens, when restricted (tokens /token issues are added). */
  validTokens?: Set<string>;
  /** The accepted refresh tokens, when restricted (tokens /token issues are added). */
  refreshTokens?: Set<string>;
  /** Makes the next consent answer `error=access_denied`, as when the user clicks Cancel. */
  denyNextConsent(): void;
  stop(): Promise<void>;
}

export async function start(options: StartOptions): Promise<DriveServer> {
  const state = new DiskState(options.dir);
  const settings: Settings = {
    quotaBytes: options.quotaBytes ?? 15 * 1024 ** 3,
    sessionTtlMs: options.sessionTtlMs ?? 7 * 24 * 3600 * 1000,
    validTokens: options.validTokens ? new Set(options.validTokens) : undefined,
    refreshTokens: options.refreshTokens ? new Set(options.refreshTokens) : undefined,
    oauth: {
      codes: new Map(),
      ...(options.clients ? { clients: new Map(Object.entries(options.clients)) } : {}),
    },
  };
  const counters: Counters = {
    requests: {},
    bytesReceived: {},
    faults: new Map(),
    log: [],
    stalls: [],
    held: [],
  };
  let rootUrl = '';
  const server = createServer(makeHandler(state, settings, counters, () => rootUrl));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  rootUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    rootUrl,
    requests: counters.requests,
    bytesReceived: counters.bytesReceived,
    log: counters.log,
    get stalled() {
      return counters.held.length;
    },
    held: counters.held,
    stallNext: (op, count = 1, skip = 0) => void counters.stalls.push({ op, skip, left: count }),
    cancelStalls: () => void (counters.stalls.length = 0),
    validTokens: settings.validTokens,
    refreshTokens: settings.refreshTokens,
    denyNextConsent: () => void (settings.oauth.denyNextConsent = true),
    clearFaults() {
      counters.faults.clear();
    },
    fail(op, times, kind) {
      const queue = counters.faults.get(op) ?? [];
      for (let i = 0; i < times; i++) queue.push(kind);
      counters.faults.set(op, queue);
    },
    setQuota: (bytes) => void (settings.quotaBytes = bytes),
    setSessionTtl: (ms) => void (settings.sessionTtlMs = ms),
    cutNextChunkAfter: (bytes) => void (settings.cutNextChunkAfter = bytes),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
