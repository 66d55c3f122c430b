/**
 * Live events from the coordinator over a pinned WebSocket (tRPC subscription). The
 * one file that imports the WebSocket client.
 */
import { createTRPCClient, createWSClient, wsLink, type TRPCClient } from '@trpc/client';
import WebSocket from 'ws';
// Types only: @kinvault/server is a devDependency, and the built agent never loads it.
import type { AppRouter } from '@kinvault/server';
import { tlsOptions } from './pinning.js';
import type { Connection } from './api.js';

export interface EventStream {
  client: TRPCClient<AppRouter>;
  close(): Promise<void>;
}

export function eventStream(conn: Connection & { token: string }): EventStream {
  const options = { ...tlsOptions(conn.pin), headers: { authorization: `Bearer ${conn.token}` } };
  // The coordinator authenticates the upgrade request's Authorization header.
  class PinnedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, options);
    }
  }
  const ws = createWSClient({
    url: `${conn.url.replace(/^https:/, 'wss:')}/trpc`,
    WebSocket: PinnedWebSocket as unknown as typeof globalThis.WebSocket,
  });
  return {
    client: createTRPCClient<AppRouter>({ links: [wsLink({ client: ws })] }),
    close: () => ws.close(),
  };
}
