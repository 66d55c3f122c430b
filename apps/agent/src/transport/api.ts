/**
 * The agent's client for the coordinator: tRPC over pinned HTTPS (undici), with the
 * device token as a Bearer header. The one file that imports the tRPC client.
 */
import { createTRPCClient, httpLink, type TRPCClient } from '@trpc/client';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AppRouter } from '@kinvault/server';
import { tlsOptions, type Pin } from './pinning.js';

export interface Connection {
  url: string;
  pin: Pin;
  token?: string;
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
        fetch: (input, init) =>
          undiciFetch(input as string, {
            ...(init as object),
            dispatcher,
          }) as unknown as Promise<Response>,
      }),
    ],
  });
}
