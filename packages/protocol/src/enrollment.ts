/**
 * Enrollment codes: one pasted line carries everything an agent needs to join a
 * household — the coordinator's URL, the SHA-256 fingerprint of its TLS certificate
 * (pinned from then on) and a single-use, expiring token.
 *
 * Format: "KV1-" ‖ base64url(JSON {u, f, t, n}) where n is the device name.
 */
import { z } from 'zod';
import { KinvaultError } from './errors.js';

export const EnrollmentSchema = z
  .object({
    url: z.string().url().startsWith('https://'),
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 fingerprint in lowercase hex'),
    token: z.string().regex(/^[A-Za-z0-9_-]{32,128}$/),
    device: z.string().min(1).max(64),
  })
  .strict();

export type Enrollment = z.infer<typeof EnrollmentSchema>;

const PREFIX = 'KV1-';

export function encodeEnrollmentCode(e: Enrollment): string {
  const parsed = EnrollmentSchema.parse(e);
  const compact = { u: parsed.url, f: parsed.fingerprint, t: parsed.token, n: parsed.device };
  return PREFIX + Buffer.from(JSON.stringify(compact), 'utf8').toString('base64url');
}

export function decodeEnrollmentCode(code: string): Enrollment {
  const bad = (why: string): never => {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `That is not a Kinvault enrollment code (${why}). Copy the whole line that "kinvaultd device add" printed; it starts with ${PREFIX}.`,
    );
  };
  const trimmed = code.trim();
  if (!trimmed.startsWith(PREFIX)) bad(`it does not start with ${PREFIX}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(trimmed.slice(PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    return bad('it is cut short or has a typo');
  }
  const r = raw as Record<string, unknown>;
  const result = EnrollmentSchema.safeParse({
    url: r.u,
    fingerprint: r.f,
    token: r.t,
    device: r.n,
  });
  if (!result.success)
    return bad(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return result.data;
}
