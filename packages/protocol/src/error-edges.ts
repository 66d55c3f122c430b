/**
 * What each error code becomes at the edges: the HTTP status (tus and plain routes), the
 * tRPC error code (procedures) and the exit code of a command. The only place these
 * mappings are made; edges look codes up here.
 *
 * Exit codes: 2 when the command line asked for something wrong (bad input, a name that
 * does not exist or already does, a wrong passphrase), 1 for every other failure. (3, a
 * backup or restore that finished with some files failed, is not an error code.)
 *
 * tRPC codes: 503 is never used for an error of ours, since agents read 503 as "the
 * coordinator is restarting" and wait; a storage target that cannot be reached is 502.
 */
import type { ErrorCode } from './errors.js';

/** The tRPC error codes we use (a subset of @trpc/server's TRPC_ERROR_CODE_KEY). */
export type TrpcCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PRECONDITION_FAILED'
  | 'UNPROCESSABLE_CONTENT'
  | 'INTERNAL_SERVER_ERROR'
  | 'BAD_GATEWAY';

export interface ErrorEdge {
  http: number;
  trpc: TrpcCode;
  exit: 1 | 2;
}

const input: ErrorEdge = { http: 400, trpc: 'BAD_REQUEST', exit: 2 };
const corrupt: ErrorEdge = { http: 422, trpc: 'UNPROCESSABLE_CONTENT', exit: 1 };
const state: ErrorEdge = { http: 412, trpc: 'PRECONDITION_FAILED', exit: 1 };

export const errorEdges: Readonly<Record<ErrorCode, ErrorEdge>> = Object.freeze({
  WRONG_PASSPHRASE: input,
  WRONG_RECOVERY_CODE: input,
  RECOVERY_CODE_INVALID: input,
  KEY_FILE_CORRUPT: corrupt,
  KEY_FILE_UNSUPPORTED: corrupt,
  WEAK_KDF_PARAMS: corrupt,
  DECRYPT_FAILED: corrupt,
  BLOB_ID_MISMATCH: corrupt,
  PACK_TRUNCATED: corrupt,
  PACK_CORRUPT: corrupt,
  PACK_UNSUPPORTED: corrupt,
  PACK_HASH_MISMATCH: corrupt,
  PACK_TOO_LARGE: { http: 413, trpc: 'BAD_REQUEST', exit: 1 },
  TREE_INVALID: corrupt,
  SNAPSHOT_INVALID: corrupt,
  CATALOG_INVALID: corrupt,
  DISK_FULL: { http: 507, trpc: 'PRECONDITION_FAILED', exit: 1 },
  CHECKSUM_MISMATCH: corrupt,
  CONFLICT: { http: 409, trpc: 'CONFLICT', exit: 1 },
  UNAUTHORIZED: { http: 401, trpc: 'UNAUTHORIZED', exit: 1 },
  NOT_FOUND: { http: 404, trpc: 'NOT_FOUND', exit: 2 },
  ALREADY_EXISTS: { http: 409, trpc: 'CONFLICT', exit: 2 },
  FAILED_PRECONDITION: state,
  UNAVAILABLE: { http: 502, trpc: 'BAD_GATEWAY', exit: 1 },
  INVALID_ARGUMENT: input,
  INTERNAL: { http: 500, trpc: 'INTERNAL_SERVER_ERROR', exit: 1 },
});

/** The edge mapping of a code; unknown codes (from a newer peer) are internal. */
export function edgeOf(code: string): ErrorEdge {
  return (errorEdges as Record<string, ErrorEdge>)[code] ?? errorEdges.INTERNAL;
}
