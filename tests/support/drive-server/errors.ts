/** Errors in the JSON shape Google APIs answer with (Drive v3 "Resolve errors" guide). */
import type { ServerResponse } from 'node:http';

export interface ErrorItem {
  domain: string;
  reason: string;
  message: string;
  location?: string;
  locationType?: 'parameter' | 'header';
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  416: 'OUT_OF_RANGE',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

export class DriveError extends Error {
  constructor(
    readonly code: number,
    readonly item: ErrorItem,
    readonly headers: Record<string, string> = {},
  ) {
    super(item.message);
  }

  body(): unknown {
    const status = STATUS_NAMES[this.code];
    return {
      error: {
        code: this.code,
        message: this.item.message,
        errors: [this.item],
        ...(status ? { status } : {}),
      },
    };
  }
}

const param = (location: string) => ({ location, locationType: 'parameter' as const });

export const errors = {
  loginRequired: () =>
    new DriveError(
      401,
      {
        domain: 'global',
        reason: 'required',
        message: 'Login Required.',
        location: 'Authorization',
        locationType: 'header',
      },
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' },
    ),
  invalidCredentials: () =>
    new DriveError(
      401,
      {
        domain: 'global',
        reason: 'authError',
        message: 'Invalid Credentials',
        location: 'Authorization',
        locationType: 'header',
      },
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
    ),
  fileNotFound: (id: string) =>
    new DriveError(404, {
      domain: 'global',
      reason: 'notFound',
      message: `File not found: ${id}.`,
      ...param('fileId'),
    }),
  notFound: (message = 'Not Found') =>
    new DriveError(404, { domain: 'global', reason: 'notFound', message }),
  invalid: (location: string, message = 'Invalid Value') =>
    new DriveError(400, { domain: 'global', reason: 'invalid', message, ...param(location) }),
  invalidParameter: (location: string, message: string) =>
    new DriveError(400, {
      domain: 'global',
      reason: 'invalidParameter',
      message,
      ...param(location),
    }),
  required: (location: string, message: string) =>
    new DriveError(400, { domain: 'global', reason: 'required', message, ...param(location) }),
  badRequest: (message: string) =>
    new DriveError(400, { domain: 'global', reason: 'badRequest', message }),
  fieldNotWritable: () =>
    new DriveError(403, {
      domain: 'global',
      reason: 'fieldNotWritable',
      message: 'The resource body includes fields which are not directly writable.',
    }),
  cannotAddParent: () =>
    new DriveError(403, {
      domain: 'global',
      reason: 'cannotAddParent',
      message: 'Increasing the number of parents is not allowed.',
    }),
  notDownloadable: () =>
    new DriveError(403, {
      domain: 'global',
      reason: 'fileNotDownloadable',
      message:
        'Only files with binary content can be downloaded. Use Export with Docs Editors files.',
      ...param('alt'),
    }),
  storageQuotaExceeded: () =>
    new DriveError(403, {
      domain: 'usageLimits',
      reason: 'storageQuotaExceeded',
      message: "The user's Drive storage quota has been exceeded.",
    }),
  userRateLimitExceeded: () =>
    new DriveError(403, {
      domain: 'usageLimits',
      reason: 'userRateLimitExceeded',
      message: 'User rate limit exceeded.',
    }),
  rateLimitExceeded: (code: 403 | 429) =>
    new DriveError(code, {
      domain: 'usageLimits',
      reason: 'rateLimitExceeded',
      message: 'Rate Limit Exceeded',
    }),
  backendError: (code: 500 | 503) =>
    new DriveError(code, {
      domain: 'global',
      reason: 'backendError',
      message: code === 500 ? 'Internal Error' : 'Service Unavailable',
    }),
  rangeNotSatisfiable: (size: number) =>
    new DriveError(
      416,
      {
        domain: 'global',
        reason: 'requestedRangeNotSatisfiable',
        message: 'Request range not satisfiable',
      },
      { 'content-range': `bytes */${size}` },
    ),
};

export function sendError(res: ServerResponse, err: DriveError): void {
  const body = JSON.stringify(err.body());
  res.writeHead(err.code, {
    ...err.headers,
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
