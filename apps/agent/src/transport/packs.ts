/**
 * Ranged reads of packs from the coordinator, over one pinned keep-alive agent. A body
 * is copied into a buffer of its announced length as it arrives; large ones come from a
 * pool (`recycle` gives them back), since a fresh 16 MiB buffer per read costs page
 * faults and garbage collections.
 */
import { Agent, request } from 'node:https';
import { BufferPool, copyInto } from '@kinvault/format';
import { KinvaultError } from '@kinvault/protocol';
import { tlsOptions } from './pinning.js';
import { answered, unavailable, withRetry } from './retry.js';
import type { Connection } from './api.js';

export interface RangeResult {
  /** The body: a view of exactly its length (possibly over a larger pooled buffer). */
  bytes: Uint8Array;
  /** The pack's total size, from Content-Range. */
  total: number;
}

export function packReader(conn: Connection & { token: string }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ...tlsOptions(conn.pin) });
  const buffers = new BufferPool(12, 16 * 1024 * 1024);
  function get(name: string, range: string): Promise<RangeResult> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${conn.url}/packs/${name}`,
        { agent, headers: { authorization: `Bearer ${conn.token}`, range } },
        (res) => {
          answered(conn.retry, res.statusCode ?? 500);
          if (res.statusCode !== 206) {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('error', reject);
            res.on('end', () =>
              reject(
                new KinvaultError(
                  res.statusCode === 401 ? 'UNAUTHORIZED' : 'PACK_TRUNCATED',
                  `Reading pack ${name.slice(0, 12)} failed (HTTP ${res.statusCode}): ${Buffer.concat(parts).toString('utf8').slice(0, 300)}`,
                  {
                    retryable: (res.statusCode ?? 0) >= 500,
                    details: { pack: name, status: res.statusCode },
                    // 503: the coordinator is stopping or starting; worth a retry
                    ...(res.statusCode === 503 && { cause: unavailable() }),
                  },
                ),
              ),
            );
            return;
          }
          const length = Number(res.headers['content-length']);
          const short = (got: number) =>
            new KinvaultError(
              'PACK_TRUNCATED',
              `Reading pack ${name.slice(0, 12)}: the coordinator sent ${got} bytes of the ${length} it announced.`,
              { retryable: true },
            );
          if (!Number.isSafeInteger(length) || length < 0) {
            res.destroy();
            return reject(short(0));
          }
          const body = buffers.take(length);
          let at = 0;
          /** Once failed, the buffer is back in the pool: nothing more goes into it. */
          let failed = false;
          const fail = (e: unknown) => {
            if (failed) return;
            failed = true;
            buffers.give(body);
            reject(e);
          };
          res.on('data', (d: Buffer) => {
            if (failed) return;
            if (at + d.byteLength > length) {
              res.destroy();
              return fail(short(at + d.byteLength));
            }
            copyInto(body, d, at);
            at += d.byteLength;
          });
          res.on('error', fail);
          res.on('end', () => {
            if (failed) return;
            if (at !== length) return fail(short(at));
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
    withRetry(`pack ${name.slice(0, 12)}`, () => get(name, range), conn.onRetry, conn.retry);
  return {
    range: (name: string, offset: number, length: number) =>
      retried(name, `bytes=${offset}-${offset + length - 1}`),
    tail: (name: string, length: number) => retried(name, `bytes=-${length}`),
    /** Gives a body's buffer back for later reads, once nothing uses it any more. */
    recycle: (bytes: Uint8Array) => buffers.give(bytes),
    close: () => agent.destroy(),
  };
}

export type PackReader = ReturnType<typeof packReader>;
