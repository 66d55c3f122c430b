/**
 * googleapis clients for tests of the Google Drive store (packages may import googleapis
 * only in the adapter): an OAuth client with a fixed access token, and what a folder holds.
 */
import { createHash } from 'node:crypto';
import { google, type Auth } from 'googleapis';

export function tokenAuth(accessToken: string): Auth.OAuth2Client {
  const auth = new google.auth.OAuth2();
  auth.setCredentials({ access_token: accessToken });
  return auth;
}

/** The names of every file (not folder) the Drive test server at `rootUrl` holds, sorted. */
export async function driveFileNames(rootUrl: string): Promise<string[]> {
  const drive = google.drive({ version: 'v3', auth: tokenAuth('test'), rootUrl });
  const res = await drive.files.list({
    q: `mimeType != 'application/vnd.google-apps.folder'`,
    fields: 'files(name)',
  });
  return (res.data.files ?? []).map((x) => x.name!).sort();
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
  const drive = google.drive({ version: 'v3', auth: tokenAuth(accessToken), rootUrl });
  const folders = await drive.files.list({
    q: `name = '${folder}' and mimeType = 'application/vnd.google-apps.folder' and trashed = false`,
    fields: 'files(id)',
  });
  const sha256 = new Map<string, string>();
  const copies = new Map<string, number>();
  const id = folders.data.files?.[0]?.id;
  if (!id) return { sha256, copies };
  let pageToken: string | undefined;
  do {
    const page = await drive.files.list({
      q: `'${id}' in parents and trashed = false`,
      fields: 'nextPageToken,files(id,name)',
      pageSize: 1000,
      pageToken,
    });
    for (const f of page.data.files ?? []) {
      const res = await drive.files.get(
        { fileId: f.id!, alt: 'media' },
        { responseType: 'arraybuffer' },
      );
      const bytes = Buffer.from(res.data as unknown as ArrayBuffer);
      sha256.set(f.name!, createHash('sha256').update(bytes).digest('hex'));
      copies.set(f.name!, (copies.get(f.name!) ?? 0) + 1);
    }
    pageToken = page.data.nextPageToken ?? undefined;
  } while (pageToken);
  return { sha256, copies };
}

/** Deletes the folder named `folder` for good, with what it holds (as emptying the trash does). */
export async function deleteDriveFolder(
  rootUrl: string,
  folder: string,
  accessToken = 'test',
): Promise<void> {
  const drive = google.drive({ version: 'v3', auth: tokenAuth(accessToken), rootUrl });
  const found = await drive.files.list({
    q: `name = '${folder}' and mimeType = 'application/vnd.google-apps.folder' and trashed = false`,
    fields: 'files(id)',
  });
  for (const f of found.data.files ?? []) await drive.files.delete({ fileId: f.id! });
}

/** Moves the folder named `folder` to the trash (what "Remove" does in Drive's web page). */
export async function trashDriveFolder(
  rootUrl: string,
  folder: string,
  accessToken = 'test',
): Promise<void> {
  const drive = google.drive({ version: 'v3', auth: tokenAuth(accessToken), rootUrl });
  const found = await drive.files.list({
    q: `name = '${folder}' and mimeType = 'application/vnd.google-apps.folder' and trashed = false`,
    fields: 'files(id)',
  });
  for (const f of found.data.files ?? [])
    await drive.files.update({ fileId: f.id!, requestBody: { trashed: true } });
}

/** The SHA-256 of every file's content at the Drive test server at `rootUrl`, by name. */
export async function driveFileHashes(rootUrl: string): Promise<Map<string, string>> {
  const drive = google.drive({ version: 'v3', auth: tokenAuth('test'), rootUrl });
  const out = new Map<string, string>();
  let pageToken: string | undefined;
  do {
    const res = await drive.files.list({
      q: `mimeType != 'application/vnd.google-apps.folder'`,
      fields: 'nextPageToken,files(id,name)',
      pageSize: 1000,
      pageToken,
    });
    for (const f of res.data.files ?? []) {
      const media = await drive.files.get(
        { fileId: f.id!, alt: 'media' },
        { responseType: 'arraybuffer' },
      );
      const bytes = Buffer.from(media.data as unknown as ArrayBuffer);
      out.set(f.name!, createHash('sha256').update(bytes).digest('hex'));
    }
    pageToken = res.data.nextPageToken ?? undefined;
  } while (pageToken);
  return out;
}
