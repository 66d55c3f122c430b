import { describe, expect, it } from 'vitest';
import { KinvaultError } from '@kinvault/protocol';
import { addSecret } from '../secrets.js';
import { reportFailure, type Output } from './failure.js';

function capture(): Output & { text: () => { err: string; out: string } } {
  let err = '';
  let out = '';
  return {
    stderr: { write: (t: string) => (err += t) },
    stdout: { write: (t: string) => (out += t) },
    text: () => ({ err, out }),
  };
}

describe('reportFailure', () => {
  const token = 'tok_' + 'Zq8'.repeat(12);
  addSecret(token);
  // What a failed tus upload carries: the request, with its Authorization header.
  const tus = Object.assign(
    new Error(
      `tus: unexpected response while uploading (headers: authorization: Bearer ${token})`,
      { cause: new Error(`socket hang up near ${token}`) },
    ),
    { originalRequest: { _headers: { authorization: `Bearer ${token}` } } },
  );
  const wrapped = new KinvaultError('INTERNAL', `Uploading pack ab12 failed:\nsee ${token}`, {
    cause: tus,
  });

  it('prints one line without any secret, also with --debug and --json', () => {
    for (const opts of [
      { json: false, debug: false },
      { json: true, debug: true },
    ]) {
      const o = capture();
      expect(reportFailure(wrapped, opts, o)).toBe(1);
      const { err, out } = o.text();
      expect(err + out).not.toContain(token);
      expect(err + out).not.toMatch(/Bearer [^[]/);
      expect(err.split('\n')[0]).toBe('kinvault: Uploading pack ab12 failed: see [redacted]');
      if (opts.debug) expect(err).toMatch(/caused by: Error: socket hang up/);
      else expect(err.trim().split('\n')).toHaveLength(1);
      if (opts.json)
        expect(JSON.parse(out)).toEqual({
          error: {
            code: 'INTERNAL',
            message: 'Uploading pack ab12 failed: see [redacted]',
            retryable: false,
          },
        });
    }
  });

  it('finds the KinvaultError in a cause chain, and exits 2 for bad input', () => {
    const o = capture();
    const outer = new Error('tRPC failed', {
      cause: new KinvaultError('INVALID_ARGUMENT', 'No snapshot id starts with abc.'),
    });
    expect(reportFailure(outer, { json: false, debug: false }, o)).toBe(2);
    expect(o.text().err).toBe('kinvault: No snapshot id starts with abc.\n');
  });
});
