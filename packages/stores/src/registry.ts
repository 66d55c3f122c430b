/**
 * Opens a store from a target URL, by scheme. Adapters register here; this is the one
 * place that knows them all.
 */
import { fileURLToPath } from 'node:url';
import { KinvaultError } from '@kinvault/protocol';
import { FileStore } from './file/file.store.js';
import { lazyStore } from './lazy.js';
import { DEFAULT_PART_SIZE, parseS3Url, partSizeFor, s3Capabilities } from './s3/url.js';
import { GDriveStore } from './gdrive/gdrive.store.js';
import { parseDriveUrl } from './gdrive/url.js';
import type { Store } from './store.js';

export type StoreFactory = (url: URL) => Store;

const factories = new Map<string, StoreFactory>([
  ['file:', (url) => new FileStore(fileURLToPath(url))],
  [
    's3:',
    (url) => {
      const target = parseS3Url(url);
      const partSize = target.partSize ?? DEFAULT_PART_SIZE;
      return lazyStore(
        target.label,
        s3Capabilities(target),
        async () => {
          const { S3Store } = await import('./s3/s3.store.js');
          return new S3Store(target);
        },
        (size) => partSizeFor(partSize, size),
      );
    },
  ],
  ['gdrive:', (url) => new GDriveStore(parseDriveUrl(url))],
]);

/** Parses a target URL; INVALID_ARGUMENT (naming the schemes known) if it is none. */
export function parseTargetUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `The target must be a URL, such as file:///path/to/folder${[...factories.keys()]
        .filter((s) => s !== 'file:')
        .map((s) => `, ${s}//…`)
        .join('')}.`,
    );
  }
  if (url.username || url.password)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `A target URL must not hold credentials (${url.protocol}// URLs take them from their own files or the environment).`,
    );
  if (url.protocol === 'file:' && (url.search || url.hash || url.host))
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `A file:// target is a folder path only (file:///mnt/usb/kinvault), without a host, "?" or "#".`,
    );
  if (!factories.has(url.protocol))
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Targets of kind ${url.protocol}// are not supported by this version (known: ${[...factories.keys()].join(', ')}).`,
    );
  return url;
}

export function openStore(text: string): Store {
  const url = parseTargetUrl(text);
  return factories.get(url.protocol)!(url);
}
