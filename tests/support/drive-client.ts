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
