/**
 * googleapis clients for tests of the Google Drive store (packages may import googleapis
 * only in the adapter): an OAuth client with a fixed access token, and what a folder holds.
 */
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
