import { describe, expect, it } from 'vitest';
import { KinvaultError } from '@kinvault/protocol';
import { loggedError } from './log-errors.js';

describe('loggedError', () => {
  it("keeps type, code, message, stack and the causes' messages, never their properties", () => {
    const sdk = Object.assign(new Error('Request failed with status code 500'), {
      config: { headers: { Authorization: 'Bearer ya29.secret-token' } },
      response: { data: 'x' },
    });
    const e = new KinvaultError('UNAVAILABLE', 'gdrive://Kv (writing x) is not answering', {
      cause: sdk,
    });
    const logged = loggedError(e);
    expect(logged).toMatchObject({
      type: 'KinvaultError',
      code: 'UNAVAILABLE',
      message: 'gdrive://Kv (writing x) is not answering',
      causes: ['Error: Request failed with status code 500'],
    });
    expect(JSON.stringify(logged)).not.toContain('ya29');
    expect(loggedError('not an error')).toMatchObject({ message: 'not an error' });
  });
});
