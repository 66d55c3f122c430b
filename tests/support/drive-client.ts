/**
 * googleapis clients for tests of the Google Drive store (packages may import googleapis
 * only in the adapter): an OAuth client with a fixed access token, and what a folder holds.
 */
import { createHash } from 'node:crypto';
import { google, type Auth, type drive_v3 } from 'googleapis';

const FOLDER = 'application/vnd.google-apps.folder';

export function tokenAuth(accessToken: string): Auth.OAuth2Client {
  const auth = new google.auth.OAuth2();
  auth.setCredentials({ access_token: accessToken });
  return auth;
}

const client = (rootUrl: string, accessToken: string) =>
  google.drive({ version: 'v3', auth: tokenAuth(accessToken), rootUrl });

/** The ids of the (untrashed) folders named `folder`. */
async function foldersNamed(drive: drive_v3.Drive, folder: string): Promise<string[]> {
  const res = await drive.files.list({
    q: `name = '${folder}' and mimeType = '${FOLDER}' and trashed = false`,
    fields: 'files(id)',
  });
  return (res.data.files ?? []).map((f) => f.id!);
}

/** Every file matching `q`, across pages, with the SHA-256 of its bytes (downloaded). */
async function hashedFiles(
  drive: drive_v3.Drive,
  q: string,
): Promise<{ name: string; sha256: string }[]> {
  const out: { name: string; sha256: string }[] = [];
  let pageToken: string | undefined;
  do {
    const page = await drive.files.list({
      q,
      fields: 'nextPageToken,files(id,name)',
      pageSize: 1000,
      pageToken,
    });
    for (const f of page.data.files ?? []) {
      const media = await drive.files.get(
        { fileId: f.id!, alt: 'media' },
        { responseType: 'arraybuffer' },
      );
      const bytes = Buffer.from(media.data as unknown as ArrayBuffer);
      out.push({ name: f.name!, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
    pageToken = page.data.nextPageToken ?? undefined;
  } while (pageToken);
  return out;
}

/** The names of every file (not folder) the Drive test server at `rootUrl` holds, sorted. */
export async function driveFileNames(rootUrl: string): Promise<string[]> {
  const res = await client(rootUrl, 'test').files.list({
    q: `mimeType != '${FOLDER}'`,
    fields: 'files(name)',
  });
  return (res.data.files ?? []).map((x) => x.name!).sort();
}

/** The SHA-256 of every file's content at the Drive test server at `rootUrl`, by name. */
export async function driveFileHashes(rootUrl: string): Promise<Map<string, string>> {
  const files = await hashedFiles(client(rootUrl, 'test'), `mimeType != '${FOLDER}'`);
  return new Map(files.map((f) => [f.name, f.sha256]));
}

/**
 * What the folder named `folder` holds at the Drive test server: each file's name and the
 * SHA-256 of its bytes (downloaded), and how many files carry each name.
 */
export async function driveFolderContents(
  rootUrl: string,
  folder: string,
  accessToken = 'test',
): Promise<{ sha256: Map<string, string>; copies: Map<string, number> }> {
  const drive = client(rootUrl, accessToken);
  const sha256 = new Map<string, string>();
  const copies = new Map<string, number>();
  const [id] = await foldersNamed(drive, folder);
  if (!id) return { sha256, copies };
  for (const f of await hashedFiles(drive, `'${id}' in parents and trashed = false`)) {
    sha256.set(f.name, f.sha256);
    copies.set(f.name, (copies.get(f.name) ?? 0) + 1);
  }
  return { sha256, copies };
}

/** Deletes the folder named `folder` for good, with what it holds (as emptying the trash does). */
export async function deleteDriveFolder(
  rootUrl: string,
  folder: string,
  accessToken = 'test',
): Promise<void> {
  const drive = client(rootUrl, accessToken);
  for (const id of await foldersNamed(drive, folder)) await drive.files.delete({ fileId: id });
}

/** Moves the folder named `folder` to the trash (what "Remove" does in Drive's web page). */
export async function trashDriveFolder(
  rootUrl: string,
  folder: string,
  accessToken = 'test',
): Promise<void> {
  const drive = client(rootUrl, accessToken);
  for (const id of await foldersNamed(drive, folder))
    await drive.files.update({ fileId: id, requestBody: { trashed: true } });
}
