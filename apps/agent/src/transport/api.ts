/**
 * The agent's client for the coordinator: tRPC over pinned HTTPS (node:https), with the
 * device token as a Bearer header. The one file that imports the tRPC client.
 */
import { createTRPCClient, httpLink, type TRPCClient } from '@trpc/client';
import { Agent, request } from 'node:https';
import { KinvaultError } from '@kinvault/protocol';
// Types only: @kinvault/server is a devDependency, and the built agent never loads it.
import type { AppRouter } from '@kinvault/server';
import { tlsOptions, type Pin } from './pinning.js';
import { answered, unavailable, withRetry, type RetryPolicy } from './retry.js';

export interface Connection {
  url: string;
  pin: Pin;
  token?: string;
  /** Told about each retry after a connection failure (for a status line). */
  onRetry?: (what: string, attempt: number, error: unknown, waitS: number) => void;
  /** How long to keep retrying (default: a few seconds). */
  retry?: RetryPolicy;
}

export type ApiClient = TRPCClient<AppRouter>;

interface FetchInit {
  method?: string;
  headers?: ConstructorParameters<typeof Headers>[0];
  body?: unknown;
  signal?: AbortSignal | null;
}

/**
 * A minimal fetch over node:https with the pinned agent: all tRPC needs (method,
 * headers, string body, status, headers and body of the answer). node:https is already
 * loaded where the undici package took a third of a second to load per command.
 */
function pinnedFetch(agent: Agent, retry?: RetryPolicy) {
  return (url: string, init: FetchInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const req = request(
        url,
        {
          agent,
          method: init.method ?? 'GET',
          headers: Object.fromEntries(new Headers(init.headers)),
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 500;
            answered(retry, status);
            // A coordinator that is stopping or starting answers 503 (not tRPC's shape):
            // retried like a connection failure.
            if (status === 503)
              return reject(
                new KinvaultError(
                  'INTERNAL',
                  `The coordinator at ${new URL(url).origin} is not taking requests right now (HTTP 503: it is stopping or starting).`,
                  {
                    retryable: true,
                    cause: unavailable(),
                  },
                ),
              );
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers))
              if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
            const empty = status === 204 || status === 304;
            resolve(new Response(empty ? null : Buffer.concat(parts), { status, headers }));
          });
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          new KinvaultError(
            'INTERNAL',
            `Cannot reach the coordinator at ${new URL(url).origin} (${e.code ?? e.message}). Is kinvaultd running there, and is this machine on its network?`,
            { retryable: true, cause: e },
          ),
        ),
      );
      req.end(typeof init.body === 'string' ? init.body : undefined);
    });
}

export function apiClient(conn: Connection): ApiClient {
  const fetch = pinnedFetch(
    new Agent({ keepAlive: true, maxSockets: 8, ...tlsOptions(conn.pin) }),
    conn.retry,
  );
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${conn.url}/trpc`,
        headers: () => (conn.token ? { authorization: `Bearer ${conn.token}` } : {}),
        // Connection failures are retried with backoff, except enrollment (its token
        // is single-use, so a blind retry could report a false "already used").
        fetch: (input, init) => {
          const url = String(input);
          const send = () => fetch(url, init as FetchInit);
          return url.includes('/trpc/enroll')
            ? send()
            : withRetry(url, send, conn.onRetry, conn.retry);
        },
      }),
    ],
  });
}
