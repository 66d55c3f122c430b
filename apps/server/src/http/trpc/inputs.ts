/** Input shapes shared by the routers (zod), and their decoding. */
import { z } from 'zod';

/** A SHA-256 or blob id: 64 lowercase hex digits. */
export const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');

/** Bytes in base64, at most 24 MiB of text (the body limit is 32 MiB). */
export const base64 = z
  .string()
  .max(24 * 1024 * 1024)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

export const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
