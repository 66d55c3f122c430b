/** The coordinator's self-signed TLS certificate; agents pin its SHA-256 fingerprint. */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** Lowercase hex SHA-256 of the certificate (DER). */
  fingerprint: string;
}

export function certificateFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export async function createTls(
  keyPath: string,
  certPath: string,
  hosts: string[],
): Promise<TlsMaterial> {
  // subjectAltName entry types: 2 = DNS name, 7 = IP address.
  const altNames = hosts.map((h) =>
    /^[\d.]+$/.test(h) || h.includes(':')
      ? { type: 7 as const, ip: h }
      : { type: 2 as const, value: h },
  );
  const pems = await generate([{ name: 'commonName', value: 'kinvault coordinator' }], {
    keyType: 'ec',
    curve: 'P-256',
    notAfterDate: new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000),
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames }],
  });
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  return { key: pems.private, cert: pems.cert, fingerprint: certificateFingerprint(pems.cert) };
}

export async function loadTls(keyPath: string, certPath: string): Promise<TlsMaterial> {
  const [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
  return { key, cert, fingerprint: certificateFingerprint(cert) };
}
