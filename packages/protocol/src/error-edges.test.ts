import { describe, expect, it } from 'vitest';
import { edgeOf, errorEdges } from './error-edges.js';
import { errorCodes } from './errors.js';

describe('error edges', () => {
  it('maps every code, never to 503 (agents read it as a restarting coordinator)', () => {
    expect(Object.keys(errorEdges).sort()).toEqual([...errorCodes].sort());
    for (const edge of Object.values(errorEdges)) {
      expect(edge.http).not.toBe(503);
      expect([1, 2]).toContain(edge.exit);
    }
  });

  it('exits 2 only for what the command line asked wrongly', () => {
    const two = errorCodes.filter((c) => errorEdges[c].exit === 2).sort();
    expect(two).toEqual(
      [
        'ALREADY_EXISTS',
        'INVALID_ARGUMENT',
        'NOT_FOUND',
        'RECOVERY_CODE_INVALID',
        'WRONG_PASSPHRASE',
        'WRONG_RECOVERY_CODE',
      ].sort(),
    );
    expect(edgeOf('NOT_FOUND')).toMatchObject({ http: 404, trpc: 'NOT_FOUND' });
    expect(edgeOf('A_CODE_FROM_A_NEWER_PEER')).toEqual(errorEdges.INTERNAL);
  });
});
