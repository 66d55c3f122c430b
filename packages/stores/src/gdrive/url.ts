/**
 * Google Drive target URLs: `gdrive://FolderName?credentials=FILE&token=FILE`.
 * - FolderName: a folder at the top of the Drive, found or created by name (percent-encode
 *   spaces and other reserved characters: `gdrive://Family%20Backup`).
 * - credentials: the OAuth client JSON downloaded from Google Cloud (a "Desktop app").
 * - token: the file holding the refresh token (JSON `{"refresh_token": …}`), mode 0600.
 * - api (optional): the Drive API's root, https://www.googleapis.com/ unless given (for a
 *   test server or a proxy; http only to a loopback address).
 * - chunkSize (optional): the resumable upload's chunk, a multiple of 256 KiB (8MiB by
 *   default, as in chunkSize=8MiB): what a lost connection or a restart sends again.
 * Both paths are absolute. Parsing only: no file is read here.
 */
import { isAbsolute } from 'node:path';
import { KinvaultError } from '@kinvault/protocol';
import { parseUrlSize } from '../sizes.js';

export interface DriveTarget {
  folder: string;
  credentialsFile: string;
  tokenFile: string;
  /** The API's root, ending in "/"; undefined: Google's. */
  rootUrl?: string;
  /** Resumable chunk size in bytes; undefined: the adapter's (8 MiB). */
  chunkBytes?: number;
}

const EXAMPLE = 'gdrive://FolderName?credentials=/path/client.json&token=/path/token.json';

function invalid(what: string): KinvaultError {
  return new KinvaultError('INVALID_ARGUMENT', `${what} A Google Drive target is ${EXAMPLE}.`);
}

/** The folder name of a gdrive URL, decoded; INVALID_ARGUMENT unless it is one plain name. */
function folderOf(url: URL): string {
  if (url.username || url.password || url.port)
    throw invalid('A Google Drive target has no user, password or port.');
  if (url.pathname !== '' && url.pathname !== '/')
    throw invalid('Give one folder at the top of the Drive, not a path.');
  let folder: string;
  try {
    folder = decodeURIComponent(url.hostname);
  } catch {
    throw invalid('The folder name is not valid percent-encoding.');
  }
  if (!folder.trim()) throw invalid('The folder name is missing.');
  if (folder.includes('/')) throw invalid('The folder name cannot contain "/".');
  return folder;
}

function fileParam(url: URL, name: 'credentials' | 'token'): string {
  const values = url.searchParams.getAll(name);
  if (values.length !== 1 || !values[0])
    throw invalid(`The ${name} file is missing (${name}=FILE, given once).`);
  if (!isAbsolute(values[0])) throw invalid(`The ${name} file must be an absolute path.`);
  return values[0];
}

const PARAMETERS = new Set(['credentials', 'token', 'api', 'chunkSize']);
const CHUNK_UNIT = 256 * 1024;

function chunkParam(url: URL): number | undefined {
  const values = url.searchParams.getAll('chunkSize');
  if (values.length === 0) return undefined;
  const bytes = values.length === 1 ? parseUrlSize(values[0]!) : null;
  if (bytes === null || bytes % CHUNK_UNIT !== 0 || bytes > 1024 ** 3)
    throw invalid(
      'The chunkSize parameter is a multiple of 256KiB up to 1GiB, given once, as in chunkSize=8MiB.',
    );
  return bytes;
}
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

function apiParam(url: URL): string | undefined {
  const values = url.searchParams.getAll('api');
  if (values.length === 0) return undefined;
  let api: URL | null;
  try {
    api = values.length === 1 ? new URL(values[0]!) : null;
  } catch {
    api = null;
  }
  const plain = api && !api.username && !api.password && !api.search && !api.hash;
  const secure =
    api?.protocol === 'https:' || (api?.protocol === 'http:' && LOOPBACK.has(api.hostname));
  if (!api || !plain || !secure)
    throw invalid(
      'The api parameter is the Drive API\'s root, given once, as https://host/ (http:// only to 127.0.0.1), without a user, "?" or "#".',
    );
  return api.href.endsWith('/') ? api.href : `${api.href}/`;
}

export function parseDriveUrl(input: URL | string): DriveTarget {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input;
  } catch {
    throw invalid('This is not a URL (percent-encode spaces as %20).');
  }
  if (url.protocol !== 'gdrive:') throw invalid(`${url.protocol}// is not gdrive://.`);
  const unknown = [...url.searchParams.keys()].filter((k) => !PARAMETERS.has(k));
  if (unknown.length > 0) throw invalid(`Unknown parameter ${unknown[0]}.`);
  const rootUrl = apiParam(url);
  const chunkBytes = chunkParam(url);
  return {
    folder: folderOf(url),
    credentialsFile: fileParam(url, 'credentials'),
    tokenFile: fileParam(url, 'token'),
    ...(rootUrl ? { rootUrl } : {}),
    ...(chunkBytes ? { chunkBytes } : {}),
  };
}
