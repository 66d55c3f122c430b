/**
 * Typed errors shared by every Kinvault package.
 *
 * Contract: `code` is stable (scripts and the wire depend on it), `retryable` says
 * whether trying the same operation again may succeed, and `message` says what
 * happened and what the user can do. Errors become HTTP statuses, tRPC errors and
 * exit codes only at the edges.
 */
export const errorCodes = [
  // Keys and key files
  'WRONG_PASSPHRASE',
  'WRONG_RECOVERY_CODE',
  'RECOVERY_CODE_INVALID',
  'KEY_FILE_CORRUPT',
  'KEY_FILE_UNSUPPORTED',
  'WEAK_KDF_PARAMS',
  // Encrypted objects
  'DECRYPT_FAILED',
  'BLOB_ID_MISMATCH',
  // Packs
  'PACK_TRUNCATED',
  'PACK_CORRUPT',
  'PACK_UNSUPPORTED',
  'PACK_HASH_MISMATCH',
  'PACK_TOO_LARGE',
  // Trees, snapshots and catalogs
  'TREE_INVALID',
  'SNAPSHOT_INVALID',
  'CATALOG_INVALID',
  // Storage
  'DISK_FULL',
  // A stored object whose bytes do not hash to what they must (a name, a recorded SHA-256)
  'CHECKSUM_MISMATCH',
  // The other side's state (not the user's input): changed meanwhile, or access refused
  'CONFLICT',
  'UNAUTHORIZED',
  // What was named does not exist, or already does
  'NOT_FOUND',
  'ALREADY_EXISTS',
  // The system is not in a state that allows the operation (not initialised, a disk not
  // mounted, a target full): the input was fine, something must be done first
  'FAILED_PRECONDITION',
  // A service we depend on (a storage target, a mail server) cannot be reached now
  'UNAVAILABLE',
  // Everything else
  'INVALID_ARGUMENT',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export interface KinvaultErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** Structured facts for logs and `--json` output (file names, offsets, sizes). */
  details?: Record<string, unknown>;
}

export class KinvaultError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: KinvaultErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KinvaultError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  toJSON(): {
    code: ErrorCode;
    message: string;
    retryable: boolean;
    details: Record<string, unknown>;
  } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      details: this.details,
    };
  }
}

export function isKinvaultError(value: unknown, code?: ErrorCode): value is KinvaultError {
  return value instanceof KinvaultError && (code === undefined || value.code === code);
}
