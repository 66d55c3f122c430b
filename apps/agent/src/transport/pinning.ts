/**
 * Certificate pinning. At setup the agent fetches the coordinator's certificate and
 * keeps it only if its SHA-256 matches the fingerprint in the enrollment code. From
 * then on every connection trusts exactly that certificate (it is its own CA), and
 * the host-name check is replaced by the fingerprint check, so a NAS that changes its
 * address keeps working while any other certificate is refused.
 */
import { X509Certificate } from 'node:crypto';
import { connect, type PeerCertificate } from 'node:tls';
import { KinvaultError } from '@kinvault/protocol';

export interface Pin {
  certPem: string;
  fingerprint: string;
}

export function fingerprintOfDer(der: Buffer): string {
  return new X509Certificate(der).fingerprint256.replace(/:/g, '').toLowerCase();
}

/** Rejects any certificate but the pinned one. */
export function checkPinned(fingerprint: string) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const got = cert.raw ? fingerprintOfDer(cert.raw) : '';
    return got === fingerprint
      ? undefined
      : new KinvaultError(
          'INVALID_ARGUMENT',
          `The coordinator presented certificate ${got || '(none)'}, not the pinned ${fingerprint}. Someone may be intercepting the connection; if the coordinator was reinstalled, enroll this device again.`,
        );
  };
}

/** TLS options for node:https and tus: trust the pinned certificate only. */
export function tlsOptions(pin: Pin) {
  return { ca: pin.certPem, checkServerIdentity: checkPinned(pin.fingerprint) };
}

/** Fetches the certificate at `url` and returns it if it has the expected fingerprint. */
export async function fetchPinnedCertificate(
  url: string,
  fingerprint: string,
  timeoutMs = 10_000,
): Promise<Pin> {
  const u = new URL(url);
  const port = Number(u.port || 443);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const der = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(
      {
        host,
        port,
        servername: /^[\d.:]+$/.test(host) ? undefined : host,
        rejectUnauthorized: false,
        timeout: timeoutMs,
      },
      () => {
        const cert = socket.getPeerCertificate();
        socket.end();
        if (!cert?.raw)
          reject(new KinvaultError('INVALID_ARGUMENT', `${url} sent no certificate.`));
        else resolve(cert.raw);
      },
    );
    socket.once('timeout', () =>
      socket.destroy(
        new KinvaultError(
          'INVALID_ARGUMENT',
          `No answer from ${url} within ${timeoutMs / 1000} s.`,
          { retryable: true },
        ),
      ),
    );
    socket.once('error', (e) =>
      reject(
        e instanceof KinvaultError
          ? e
          : new KinvaultError(
              'INVALID_ARGUMENT',
              `Cannot reach the coordinator at ${url}: ${(e as NodeJS.ErrnoException).code ?? e.message}. Is kinvaultd running, and is this machine on the same network?`,
              { retryable: true, cause: e },
            ),
      ),
    );
  });
  const got = fingerprintOfDer(der);
  if (got !== fingerprint) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `The coordinator at ${url} presented certificate ${got}, but the enrollment code expects ${fingerprint}. Do not continue on this network; ask for a new code.`,
    );
  }
  const pem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
  return { certPem: pem, fingerprint };
}
