/**
 * S3's additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256): incremental hashers, header
 * names, validation of base64 values, and composite checksums of multipart objects.
 */
import { AwsCrc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
export type ChecksumType = 'COMPOSITE' | 'FULL_OBJECT';

const DIGEST_BYTES: Record<Algorithm, number> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
};

export const headerName = (a: Algorithm) => `x-amz-checksum-${a.toLowerCase()}`;
/** The XML element of a checksum in listings and replies: ChecksumCRC32, ChecksumSHA256… */
export const xmlName = (a: Algorithm) => `Checksum${a}`;

export function parseAlgorithm(value: string | undefined): Algorithm | undefined {
  if (value === undefined) return undefined;
  const upper = value.toUpperCase();
  return (ALGORITHMS as readonly string[]).includes(upper) ? (upper as Algorithm) : undefined;
}

export function algorithmOfHeader(name: string): Algorithm | undefined {
  const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name.toLowerCase());
  return m ? parseAlgorithm(m[1]) : undefined;
}

/** True when `value` is the base64 of a digest of the algorithm's size. */
export function isValidValue(a: Algorithm, value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  return Buffer.from(value, 'base64').byteLength === DIGEST_BYTES[a];
}

export interface Hasher {
  update(data: Uint8Array): void;
  /** The digest, raw. */
  digest(): Promise<Buffer>;
}

class Crc32Hasher implements Hasher {
  private value = 0;
  update(data: Uint8Array) {
    this.value = crc32(data, this.value);
  }
  async digest() {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0);
    return out;
  }
}

const wrap = (c: { update(d: Uint8Array): void; digest(): Promise<Uint8Array> }): Hasher => ({
  update: (d) => c.update(d),
  digest: async () => Buffer.from(await c.digest()),
});

const nodeHash = (name: string): Hasher => {
  const h = createHash(name);
  return { update: (d) => void h.update(d), digest: async () => h.digest() };
};

export function createHasher(a: Algorithm): Hasher {
  switch (a) {
    case 'CRC32':
      return new Crc32Hasher();
    case 'CRC32C':
      return wrap(new AwsCrc32c());
    case 'CRC64NVME':
      return wrap(new Crc64Nvme());
    case 'SHA1':
      return nodeHash('sha1');
    case 'SHA256':
      return nodeHash('sha256');
  }
}

/** The checksum types each algorithm allows (S3 guide, "Checking object integrity"). */
export function allowedTypes(a: Algorithm): ChecksumType[] {
  if (a === 'CRC64NVME') return ['FULL_OBJECT'];
  if (a === 'SHA1' || a === 'SHA256') return ['COMPOSITE'];
  return ['COMPOSITE', 'FULL_OBJECT'];
}

/** A composite checksum: base64(H(concatenated raw part digests)) + "-N". */
export async function compositeChecksum(a: Algorithm, partValues: string[]): Promise<string> {
  const h = createHasher(a);
  for (const v of partValues) h.update(Buffer.from(v, 'base64'));
  return `${(await h.digest()).toString('base64')}-${partValues.length}`;
}
