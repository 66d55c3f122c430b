/**
 * The agent's client for the coordinator: tRPC over pinned HTTPS (undici), with the
 * device token as a Bearer header. The one file that imports the tRPC client.
 */
import { createTRPCClient, httpLink, type TRPCClient } from '@trpc/client';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AppRouter } from '@kinvault/server';
import { tlsOptions, type Pin } from './pinning.js';
import { withRetry } from './retry.js';

export interface Connection {
  url: string;
  pin: Pin;
  token?: string;
  /** Told about each retry after a connection failure (for a status line). */
  onRetry?: (what: string, attempt: number, error: unknown) => void;
}

export function pinnedDispatcher(pin: Pin): Agent {
  return new Agent({ connect: tlsOptions(pin) });
}

export type ApiClient = TRPCClient<AppRouter>;

export function apiClient(conn: Connection): ApiClient {
  const dispatcher = pinnedDispatcher(conn.pin);
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${conn.url}/trpc`,
        headers: () => (conn.token ? { authorization: `Bearer ${conn.token}` } : {}),
        // Connection failures are retried with backoff, except enrollment (its token
        // is single-use, so a blind retry could report a false "already used").
        fetch: (input, init) => {
          const url = String(input);
          const send = () =>
            undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
          return url.includes('/trpc/enroll') ? send() : withRetry(url, send, conn.onRetry);
        },
      }),
    ],
  });
}
