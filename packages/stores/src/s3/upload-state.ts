/**
 * What the S3 adapter saves through an UploadResume for a multipart upload: the upload's
 * id, the part size it was cut in, and the body it is for. The upload id grants nothing
 * without the bucket's credentials.
 */
export interface S3UploadState {
  uploadId: string;
  partSize: number;
  size: number;
  sha256: string;
}

export const encodeState = (s: S3UploadState): string => JSON.stringify({ v: 1, ...s });

/** The state saved earlier, or null when there is none or it is not ours (any other text). */
export function decodeState(text: string | null): S3UploadState | null {
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const s = v as Partial<S3UploadState> & { v?: unknown };
  const ok =
    s !== null &&
    typeof s === 'object' &&
    s.v === 1 &&
    typeof s.uploadId === 'string' &&
    s.uploadId !== '' &&
    Number.isSafeInteger(s.partSize) &&
    s.partSize! > 0 &&
    Number.isSafeInteger(s.size) &&
    typeof s.sha256 === 'string';
  return ok
    ? { uploadId: s.uploadId!, partSize: s.partSize!, size: s.size!, sha256: s.sha256! }
    : null;
}
