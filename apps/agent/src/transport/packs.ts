/** Ranged reads of packs from the coordinator, over one pinned keep-alive agent. */
import { Agent, request } from 'node:https';
import { KinvaultError } from '@kinvault/protocol';
import { tlsOptions } from './pinning.js';
import { withRetry } from './retry.js';
import type { Connection } from './api.js';

export interface RangeResult {
  bytes: Buffer;
  /** The pack's total size, from Content-Range. */
  total: number;
}

export function packReader(conn: Connection & { token: string }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ...tlsOptions(conn.pin) });
  function get(name: string, range: string): Promise<RangeResult> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${conn.url}/packs/${name}`,
        { agent, headers: { authorization: `Bearer ${conn.token}`, range } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(parts);
            if (res.statusCode !== 206) {
              return reject(
                new KinvaultError(
                  res.statusCode === 401 ? 'INVALID_ARGUMENT' : 'PACK_TRUNCATED',
                  `Reading pack ${name.slice(0, 12)} failed (HTTP ${res.statusCode}): ${body.toString('utf8').slice(0, 300)}`,
                  { retryable: (res.statusCode ?? 0) >= 500 },
                ),
              );
            }
            const total = Number(/\/(\d+)$/.exec(String(res.headers['content-range']))?.[1]);
            resolve({ bytes: body, total });
          });
        },
      );
      req.on('error', (e) =>
        reject(
          new KinvaultError(
            'INTERNAL',
            `Cannot reach the coordinator at ${conn.url} (${(e as NodeJS.ErrnoException).code ?? e.message}). Is kinvaultd running there, and is this machine on its network?`,
            { retryable: true, cause: e },
          ),
        ),
      );
      req.end();
    });
  }
  const retried = (name: string, range: string) =>
    withRetry(`pack ${name.slice(0, 12)}`, () => get(name, range), conn.onRetry);
  return {
    range: (name: string, offset: number, length: number) =>
      retried(name, `bytes=${offset}-${offset + length - 1}`),
    tail: (name: string, length: number) => retried(name, `bytes=-${length}`),
    close: () => agent.destroy(),
  };
}

export type PackReader = ReturnType<typeof packReader>;
