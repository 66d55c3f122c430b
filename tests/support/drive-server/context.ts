/** What every handler gets, and small helpers to read requests and send answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors } from './errors.js';
import type { OAuthState } from './oauth.js';
import type { DiskState } from './state.js';

export interface Settings {
  quotaBytes: number;
  sessionTtlMs: number;
  /** When set, only these access tokens are accepted; otherwise any bearer token is. */
  validTokens?: Set<string>;
  /** Refresh tokens the /token endpoint accepts (any when unset). */
  refreshTokens?: Set<string>;
  /** The OAuth endpoints' clients and codes (in memory: codes do not survive a restart). */
  oauth: OAuthState;
  /** Set to make the next resumable chunk's connection drop after this many body bytes. */
  cutNextChunkAfter?: number;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  state: DiskState;
  settings: Settings;
  rootUrl: string;
  /** Counts body bytes the server received, per operation. */
  countBytes(n: number): void;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendEmpty(
  res: ServerResponse,
  status: number,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { ...headers, 'content-length': 0 });
  res.end();
}

/** The whole request body (uploads in tests are small enough to hold). */
export async function readBody(ctx: Ctx): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of ctx.req) {
    parts.push(chunk as Buffer);
    ctx.countBytes((chunk as Buffer).byteLength);
  }
  return Buffer.concat(parts);
}

export async function readJson(ctx: Ctx): Promise<Record<string, unknown>> {
  const body = await readBody(ctx);
  if (body.byteLength === 0) return {};
  return parseJsonObject(body.toString('utf8'));
}

export function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.badRequest('Invalid JSON payload received.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw errors.badRequest('Invalid JSON payload received. The body must be an object.');
  }
  return value as Record<string, unknown>;
}
