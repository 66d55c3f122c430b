/** S3's error replies: a status, a code, AWS's message, and extra XML fields. */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

const e = (status: number, code: string, message: string) => (fields?: Record<string, string>) =>
  new S3Error(status, code, message, fields);

/** The errors the server answers, with S3's codes, statuses and messages. */
export const errors = {
  accessDenied: e(403, 'AccessDenied', 'Access Denied'),
  noSuchBucket: e(404, 'NoSuchBucket', 'The specified bucket does not exist'),
  noSuchKey: e(404, 'NoSuchKey', 'The specified key does not exist.'),
  noSuchUpload: e(
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  ),
  bucketAlreadyOwnedByYou: e(
    409,
    'BucketAlreadyOwnedByYou',
    'Your previous request to create the named bucket succeeded and you already own it.',
  ),
  invalidBucketName: e(400, 'InvalidBucketName', 'The specified bucket is not valid.'),
  invalidRange: e(416, 'InvalidRange', 'The requested range is not satisfiable'),
  invalidObjectState: e(
    403,
    'InvalidObjectState',
    "The operation is not valid for the object's storage class",
  ),
  restoreInProgress: e(409, 'RestoreAlreadyInProgress', 'Object restore is already in progress'),
  methodNotAllowed: e(
    405,
    'MethodNotAllowed',
    'The specified method is not allowed against this resource.',
  ),
  notImplemented: e(
    501,
    'NotImplemented',
    'A header you provided implies functionality that is not implemented.',
  ),
  missingContentLength: e(
    411,
    'MissingContentLength',
    'You must provide the Content-Length HTTP header.',
  ),
  incompleteBody: e(
    400,
    'IncompleteBody',
    'You did not provide the number of bytes specified by the Content-Length HTTP header.',
  ),
  entityTooLarge: e(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size'),
  entityTooSmall: e(
    400,
    'EntityTooSmall',
    'Your proposed upload is smaller than the minimum allowed object size.',
  ),
  invalidPart: e(
    400,
    'InvalidPart',
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
  ),
  invalidPartOrder: e(
    400,
    'InvalidPartOrder',
    'The list of parts was not in ascending order. Parts must be ordered by part number.',
  ),
  malformedXML: e(
    400,
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  ),
  invalidDigest: e(400, 'InvalidDigest', 'The Content-MD5 you specified was not valid.'),
  md5Mismatch: e(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.'),
  contentSha256Mismatch: e(
    400,
    'XAmzContentSHA256Mismatch',
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
  ),
  invalidChunkSize: e(
    400,
    'InvalidChunkSizeError',
    'Only the last chunk is allowed to have a size less than 8192 bytes',
  ),
  slowDown: e(503, 'SlowDown', 'Please reduce your request rate.'),
  internalError: e(500, 'InternalError', 'We encountered an internal error. Please try again.'),
};

export const invalidArgument = (message: string, name?: string, value?: string) =>
  new S3Error(
    400,
    'InvalidArgument',
    message,
    name ? { ArgumentName: name, ArgumentValue: value ?? '' } : {},
  );

export const invalidRequest = (message: string) => new S3Error(400, 'InvalidRequest', message);

/** A checksum that does not match the data: "The CRC32 you specified did not match the calculated checksum." */
export const checksumMismatch = (algorithm: string) =>
  new S3Error(
    400,
    'BadDigest',
    `The ${algorithm} you specified did not match the calculated checksum.`,
  );
