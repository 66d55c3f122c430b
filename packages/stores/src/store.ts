/**
 * The Store port: a flat namespace of immutable objects at a storage target (a USB disk,
 * an S3 bucket, a Google Drive folder). Defined by what staging, volumes, restores and
 * checks need; every adapter passes the conformance suite in testing/conformance.ts.
 *
 * Contract:
 * - Keys are relative paths of lowercase letters, digits, `.`, `_`, `-` and `/`
 *   (keys.ts). Objects are written once; a put of an existing key replaces it whole.
 * - `put` is atomic: afterwards the object has exactly the body's bytes, or (when it
 *   throws) the key holds what it held before. The store checks the bytes against the
 *   body's size and SHA-256 while writing and refuses a mismatch (CHECKSUM_MISMATCH);
 *   an interrupted put leaves no visible object.
 * - Read after write: once `put` resolved, `head`, `get` and `list` see the object.
 * - `get` of a missing key throws NOT_FOUND; `head` of one returns null; `delete` of one
 *   succeeds (idempotent). A range past the end is INVALID_ARGUMENT.
 * - `list` returns keys in ascending byte order, a page at a time; `next` is an opaque
 *   cursor for the following page, null after the last. Its SHA-256s are null unless the
 *   provider's listing carries them: whoever needs one asks `head`.
 * - Resumable puts: `put(key, body, { resume })` hands the store an UploadResume, the
 *   caller's durable place (a database row) for one upload of `key`. A store that can
 *   resume an upload (S3 multipart, Drive resumable) saves its state there once the
 *   upload exists at the provider, before it sends the body's bytes, and may save again
 *   as it goes. A later put of the same key and body with the same place (from any
 *   instance of the store: after a restart, say) loads that state and sends only what
 *   the provider does not hold yet, checking what it keeps against the body. A state
 *   for another body, or for an upload the provider no longer has, is dropped and the
 *   upload starts afresh. The store clears the state once the put completed, or when it
 *   gives the upload up (a failure that is not retryable); a retryable failure keeps
 *   it. The state is the adapter's, an opaque string, and may grant access by itself
 *   (a Drive session URI): the caller keeps it like a credential, never in logs,
 *   messages or output. Stores that cannot resume ignore it.
 * - `sweep`, where a store has one, removes what interrupted puts left at the target
 *   (temporary files, unfinished uploads), except the uploads that the given saved
 *   states refer to. It runs only while no put runs (at start).
 * - Failures are KinvaultErrors; `retryable` says whether the same call may succeed
 *   later (a network error, a 5xx, a rate limit). Messages name the target, never a
 *   credential.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Hex SHA-256 of the bytes, when the store records it (see `recordsSha256`). */
  sha256: string | null;
  /** From `head`, where the provider has them: the object's storage class (S3's). */
  storageClass?: string;
  /**
   * From `head`, where the provider computed one: its SHA-256 checksum of the object as
   * it reports it (S3: base64, and for a multipart object the composite `b64-N`, the
   * SHA-256 of the parts' digests concatenated, N the number of parts).
   */
  providerSha256?: string;
}

export interface StoreCapabilities {
  /** `get` with a range transfers only that range. */
  rangedReads: boolean;
  /** Objects may be frozen (Glacier classes): a `get` may need a restore first. */
  needsRestore: boolean;
  /** The largest object a put accepts, in bytes. */
  maxObjectBytes: number;
  /** `head` gives each object's SHA-256 without reading it (`list` may not: see above). */
  recordsSha256: boolean;
  /** The storage class puts write, where the provider has classes (S3's; `head` says it). */
  storageClass?: string;
}

/** What a put writes: its size and SHA-256 are known before, and checked while writing. */
export interface Body {
  size: number;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  /** The bytes, from the start; may be called again (a retried put reads them anew). */
  open(): AsyncIterable<Uint8Array>;
  /**
   * The same bytes from `offset` on, where the body can make them without reading what
   * comes before (a generated volume). A store resuming an upload whose earlier part is
   * held already may then start there; it trusts the held parts to be this body's (the
   * saved state names the body's size and SHA-256), so only a body that makes the same
   * bytes every time may offer this.
   */
  openAt?(offset: number): AsyncIterable<Uint8Array>;
}

export interface Range {
  offset: number;
  length: number;
}

export interface ListPage {
  objects: ObjectInfo[];
  next: string | null;
}

export interface Usage {
  /** Bytes the provider counts as used (all of the account or disk), when it says. */
  usedBytes: number | null;
  /** The provider's limit, when it has one (Drive's 15 GB, a disk's size). */
  quotaBytes: number | null;
}

/**
 * Where a put keeps the state it needs to resume an interrupted upload (see the
 * contract above): the caller's, bound to one key at one store.
 */
export interface UploadResume {
  /** The state an earlier put saved, or null. */
  load(): Promise<string | null>;
  /** Replaces the saved state; resolves once it is durable. */
  save(state: string): Promise<void>;
  /** Forgets the saved state (the upload completed or was given up). */
  clear(): Promise<void>;
}

export interface PutOptions {
  resume?: UploadResume;
  /** Called after each part a store that uploads in parts holds (sent now or before). */
  onPart?(done: number, total: number): void | Promise<void>;
}

export interface Store {
  /** What the store is, for messages: its URL without credentials. */
  readonly label: string;
  readonly capabilities: StoreCapabilities;
  put(key: string, body: Body, options?: PutOptions): Promise<ObjectInfo>;
  get(key: string, range?: Range): Promise<Readable>;
  head(key: string): Promise<ObjectInfo | null>;
  list(prefix: string, page?: { after?: string | null; limit?: number }): Promise<ListPage>;
  delete(key: string): Promise<void>;
  usage(): Promise<Usage>;
  /** For a store that uploads large bodies in parts: the part size a body of `size` gets. */
  partSizeFor?(size: number): number;
  /** Removes what interrupted puts left, but the uploads `resumable` (saved states) refer to. */
  sweep?(resumable: readonly string[]): Promise<void>;
}

/** A wrapper's copies of the optional methods of the store it wraps (bound to it). */
export function optionalMethods(inner: Store): Pick<Store, 'sweep' | 'partSizeFor'> {
  return {
    ...(inner.sweep ? { sweep: inner.sweep.bind(inner) } : {}),
    ...(inner.partSizeFor ? { partSizeFor: inner.partSizeFor.bind(inner) } : {}),
  };
}
