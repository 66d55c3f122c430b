/**
 * Randomness comes in as a parameter so that tests and known-answer vectors can be
 * deterministic. `systemRandom` is the default everywhere outside tests.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';

export type RandomSource = (length: number) => Uint8Array;

export const systemRandom: RandomSource = (length) => new Uint8Array(randomBytes(length));

/**
 * Deterministic bytes for tests and vectors only: the ChaCha20 keystream under
 * SHA-256(label) with an all-zero nonce and counter. Never use it for real keys or nonces.
 */
export function deterministicRandom(label: string): RandomSource {
  const key = createHash('sha256').update(label, 'utf8').digest();
  const stream = createCipheriv('chacha20', key, Buffer.alloc(16));
  return (length) => new Uint8Array(stream.update(Buffer.alloc(length)));
}
