/**
 * Internal failures at the HTTP edge (a database error, a file-system error, a bug)
 * reach clients only as a generic message with a short reference; the coordinator's
 * log has the details under the same reference. Server paths, stacks and library
 * versions never leave the process.
 */
import { randomBytes } from 'node:crypto';

const references = new WeakMap<object, string>();

/**
 * A short reference for this failure, the same every time it is asked for the same
 * error or for an error wrapping it (tRPC wraps a thrown error more than once).
 */
export function referenceOf(error: unknown): string {
  const keys = [error, error instanceof Error ? error.cause : undefined].filter(
    (k): k is object => typeof k === 'object' && k !== null,
  );
  for (const k of keys) {
    const known = references.get(k);
    if (known) return known;
  }
  const ref = randomBytes(4).toString('hex');
  for (const k of keys) references.set(k, ref);
  return ref;
}

/** What a client is told about an internal failure. */
export function internalErrorMessage(ref: string): string {
  return (
    `The coordinator ran into an internal error (reference ${ref}). Try again; if it keeps ` +
    `happening, look for "${ref}" in the coordinator's log.`
  );
}
