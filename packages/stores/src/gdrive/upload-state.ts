/**
 * What the Drive adapter saves through an UploadResume for a resumable upload: the
 * session URI and the body it is for. The URI lets whoever holds it upload into the
 * Drive without further authorisation: a secret, kept out of messages and logs.
 */
export interface DriveUploadState {
  uri: string;
  size: number;
  sha256: string;
}

export const encodeSession = (s: DriveUploadState): string => JSON.stringify({ v: 1, ...s });

/**
 * The state saved earlier, or null: none, not ours, or a URI outside `uploadRoot`
 * (requests to it carry the access token, so they go only to the Drive's upload endpoint).
 */
export function decodeSession(text: string | null, uploadRoot: string): DriveUploadState | null {
  let v: unknown;
  try {
    v = text === null ? null : JSON.parse(text);
  } catch {
    return null;
  }
  const s = v as Partial<DriveUploadState> & { v?: unknown };
  const ok =
    s !== null &&
    typeof s === 'object' &&
    s.v === 1 &&
    typeof s.uri === 'string' &&
    s.uri.startsWith(uploadRoot) &&
    Number.isSafeInteger(s.size) &&
    typeof s.sha256 === 'string';
  return ok ? { uri: s.uri!, size: s.size!, sha256: s.sha256! } : null;
}
