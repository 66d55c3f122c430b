/**
 * Randomness comes in as a parameter so that tests and known-answer vectors can be
 * deterministic. `systemRandom` is the default everywhere outside tests.
 */
import { createCipheriv, createHash, randomBytes, randomFillSync } from 'node:crypto';

export type RandomSource = (length: number) => Uint8Array;

/**
 * The system CSPRNG, drawn 4 KiB at a time (one call per nonce cost more than the
 * nonce's share of a small blob's sealing). Every byte is handed out once.
 */
const POOL = 4096;
let pool = new Uint8Array(0);
let used = 0;
export const systemRandom: RandomSource = (length) => {
  if (length > POOL) return new Uint8Array(randomBytes(length));
  if (used + length > pool.byteLength) {
    pool = randomFillSync(new Uint8Array(POOL));
    used = 0;
  }
  const out = pool.slice(used, used + length);
  used += length;
  return out;
};

/**
 * Deterministic bytes for tests and vectors only: the ChaCha20 keystream under
 * SHA-256(label) with an all-zero nonce and counter. Never use it for real keys or nonces.
 */
export function deterministicRandom(label: string): RandomSource {
  const key = createHash('sha256').update(label, 'utf8').digest();
  const stream = createCipheriv('chacha20', key, Buffer.alloc(16));
  return (length) => new Uint8Array(stream.update(Buffer.alloc(length)));
}
