import { describe, expect, it } from 'vitest';
import { KinvaultError } from '@kinvault/protocol';
import { classify, RestoreFailures } from './restore-failures.js';

const P = 'ab'.repeat(32);
const Q = 'cd'.repeat(32);
// As transport/packs.ts makes it for a 404 answer.
const notFound = new KinvaultError(
  'PACK_TRUNCATED',
  `Reading pack ${P.slice(0, 12)} failed (HTTP 404): {"error":"Pack is not stored here."}`,
  { details: { pack: P, status: 404 } },
);
const refused = new KinvaultError('INTERNAL', 'Cannot reach the coordinator', {
  retryable: true,
  cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
});

describe('restore failures', () => {
  it('tells a missing pack, a damaged one, an unreachable coordinator and other errors apart', () => {
    expect(classify(notFound)).toBe('missing');
    expect(classify(new KinvaultError('DECRYPT_FAILED', 'x'))).toBe('corrupt');
    expect(
      classify(
        new KinvaultError('PACK_TRUNCATED', 'Reading pack failed (HTTP 416)', {
          details: { status: 416 },
        }),
      ),
    ).toBe('unreadable');
    // What the coordinator said of a pack it no longer has (repository.ts `locate`).
    expect(
      classify(new KinvaultError('PACK_CORRUPT', 'x', { details: { state: 'missing' } })),
    ).toBe('missing');
    expect(classify(refused)).toBe('unreachable');
    // Not about a pack: these stop the restore.
    expect(classify(new KinvaultError('INVALID_ARGUMENT', 'Unauthorized (HTTP 404)'))).toBeNull();
    expect(classify(new KinvaultError('UNAUTHORIZED', 'revoked (HTTP 401)'))).toBeNull();
    expect(classify(new TypeError('bug'))).toBeNull();
  });

  it('says which pack and why, and reports each damaged pack once', () => {
    const f = new RestoreFailures();
    f.unreadable(P, ['11'.repeat(32), '22'.repeat(32)], notFound);
    f.corrupt(Q, '33'.repeat(32));
    f.corrupt(Q, '44'.repeat(32));
    f.unreadable(null, ['55'.repeat(32)], new KinvaultError('PACK_CORRUPT', 'in no pack'));
    expect(f.problem(['00', '22'.repeat(32)])).toEqual({
      pack: P,
      reason: `pack ${P.slice(0, 12)} is missing on the coordinator`,
    });
    expect(f.problem(['44'.repeat(32)])?.reason).toBe(
      `pack ${Q.slice(0, 12)} is damaged: blob ${'44'.repeat(6)} failed its integrity check`,
    );
    expect(f.problem(['55'.repeat(32)])).toEqual({
      pack: null,
      reason: `blob ${'55'.repeat(6)} is in no pack the coordinator has`,
    });
    expect(f.packs()).toEqual([
      { pack: P, reason: 'missing', blobs: ['11'.repeat(32), '22'.repeat(32)] },
      { pack: Q, reason: 'corrupt', blobs: ['33'.repeat(32), '44'.repeat(32)] },
    ]);
    expect(() => f.unreadable(P, ['66'], new TypeError('bug'))).toThrow('bug');
  });

  it('fails the packs after an unreachable coordinator without reporting them as damaged', () => {
    const f = new RestoreFailures();
    f.unreadable(P, ['11'], refused);
    expect(f.unreachable).toBe(refused);
    f.unreadable(Q, ['22'], f.unreachable);
    expect(f.problem(['22'])).toEqual({
      pack: Q,
      reason: `pack ${Q.slice(0, 12)} could not be fetched: the coordinator stopped answering`,
    });
    expect(f.packs()).toEqual([]);
  });
});
