/**
 * Opens a store from a target URL, by scheme. Adapters register here; this is the one
 * place that knows them all.
 */
import { fileURLToPath } from 'node:url';
import { KinvaultError } from '@kinvault/protocol';
import { FileStore } from './file/file.store.js';
import { GDriveStore } from './gdrive/gdrive.store.js';
import { parseDriveUrl } from './gdrive/url.js';
import type { Store } from './store.js';

export type StoreFactory = (url: URL) => Store;

const factories = new Map<string, StoreFactory>([
  ['file:', (url) => new FileStore(fileURLToPath(url))],
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
