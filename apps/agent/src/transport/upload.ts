/**
 * Pack uploads with tus: resumable within a run and, through a persisted UrlStorage,
 * across restarts (the upload is found again by the pack's name). The one file that
 * imports tus-js-client.
 */
import type { ReadStream } from 'node:fs';
import type { DetailedError, UrlStorage } from 'tus-js-client';
import { KinvaultError, TUS_PATH } from '@kinvault/protocol';
import { tlsOptions } from './pinning.js';
import type { Connection } from './api.js';
import { BACKOFF_S, outageLeftMs } from './retry.js';

export interface PackUpload {
  conn: Connection & { token: string };
  /** The pack's name (SHA-256, hex). */
  name: string;
  /** The pack's bytes, or a read stream of the pack file (resumable at any offset). */
  data: Buffer | ReadStream;
  size: number;
  urlStorage?: UrlStorage;
  onProgress?: (sent: number, total: number) => void;
  /** Milliseconds before each retry; by default at once, then the connection's schedule. */
  retryDelays?: number[];
}

/** HTTP 507 Insufficient Storage: the coordinator's disk is full. */
const DISK_FULL = 507;

function statusOf(err: Error | DetailedError): number | undefined {
  return 'originalResponse' in err ? err.originalResponse?.getStatus() : undefined;
}

export async function uploadPack(u: PackUpload): Promise<void> {
  // Loaded on first use: a backup with nothing new to send never needs it.
  const { DefaultHttpStack, Upload } = await import('tus-js-client');
  return new Promise((resolve, reject) => {
    const upload = new Upload(u.data, {
      endpoint: `${u.conn.url}${TUS_PATH}`,
      uploadSize: u.size,
      metadata: { pack: u.name },
      headers: { authorization: `Bearer ${u.conn.token}` },
      // tus writes a buffer in pieces of the socket's high-water mark: 1 MiB pieces take
      // about a third less CPU than the default 16 KiB (one TLS write and syscall each).
      httpStack: new DefaultHttpStack({ ...tlsOptions(u.conn.pin), highWaterMark: 1024 * 1024 }),
      // One PATCH per pack (packs are at most ~24 MiB); a broken PATCH keeps what arrived.
      chunkSize: 64 * 1024 * 1024,
      // A broken PATCH is resumed at once, then as long as the other calls keep trying.
      retryDelays: u.retryDelays ?? [
        0,
        ...(u.conn.retry?.schedule ?? BACKOFF_S).map((s) => s * 1000),
      ],
      ...(u.urlStorage ? { urlStorage: u.urlStorage } : {}),
      storeFingerprintForResuming: u.urlStorage !== undefined,
      removeFingerprintOnSuccess: true,
      fingerprint: async () => `kinvault-pack-${u.name}`,
      // A refusal (4xx other than a lock conflict) will not change by retrying, nor will a
      // coordinator whose disk is full (507): that needs someone to free space on the NAS.
      onShouldRetry: (err) => {
        const status = statusOf(err) ?? 0;
        if (status === DISK_FULL) return false;
        // No answer: retried while the outage is younger than the job's window.
        if (status === 0) return outageLeftMs(u.conn.retry) > 0;
        return status === 409 || status === 423 || status >= 500;
      },
      onProgress: (sent, total) => u.onProgress?.(sent, total),
      onSuccess: () => resolve(),
      onError: (err) => {
        const status = statusOf(err);
        const body =
          'originalResponse' in err ? err.originalResponse?.getBody()?.trim() : undefined;
        reject(
          new KinvaultError(
            status === 401 || status === 403
              ? 'UNAUTHORIZED'
              : status === DISK_FULL
                ? 'DISK_FULL'
                : 'INTERNAL',
            `Uploading pack ${u.name.slice(0, 12)} failed${status ? ` (HTTP ${status})` : ''}: ${body || err.message}`,
            {
              retryable: status === undefined || (status >= 500 && status !== DISK_FULL),
              cause: err,
              details: { status },
            },
          ),
        );
      },
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (previous[0]) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      })
      .catch(reject);
  });
}
