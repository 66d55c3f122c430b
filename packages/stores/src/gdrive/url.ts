/**
 * Google Drive target URLs: `gdrive://FolderName?credentials=FILE&token=FILE`.
 * - FolderName: a folder at the top of the Drive, found or created by name (percent-encode
 *   spaces and other reserved characters: `gdrive://Family%20Backup`).
 * - credentials: the OAuth client JSON downloaded from Google Cloud (a "Desktop app").
 * - token: the file holding the refresh token (JSON `{"refresh_token": …}`), mode 0600.
 * Both paths are absolute. Parsing only: no file is read here.
 */
import { isAbsolute } from 'node:path';
import { KinvaultError } from '@kinvault/protocol';

export interface DriveTarget {
  folder: string;
  credentialsFile: string;
  tokenFile: string;
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

export function parseDriveUrl(input: URL | string): DriveTarget {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input;
  } catch {
    throw invalid('This is not a URL (percent-encode spaces as %20).');
  }
  if (url.protocol !== 'gdrive:') throw invalid(`${url.protocol}// is not gdrive://.`);
  const unknown = [...url.searchParams.keys()].filter((k) => k !== 'credentials' && k !== 'token');
  if (unknown.length > 0) throw invalid(`Unknown parameter ${unknown[0]}.`);
  return {
    folder: folderOf(url),
    credentialsFile: fileParam(url, 'credentials'),
    tokenFile: fileParam(url, 'token'),
  };
}
