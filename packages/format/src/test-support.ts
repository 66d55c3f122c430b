/** Helpers shared by this package's tests (not exported from the package). */
import { isKinvaultError, type ErrorCode } from '@kinvault/protocol';

export type Outcome = ErrorCode | 'no error' | `not a KinvaultError: ${string}`;

function outcomeOf(error: unknown): Outcome {
  return isKinvaultError(error) ? error.code : `not a KinvaultError: ${String(error)}`;
}

/** The KinvaultError code `run` throws, or 'no error'. */
export function codeOf(run: () => unknown): Outcome {
  try {
    run();
    return 'no error';
  } catch (e) {
    return outcomeOf(e);
  }
}

/** The KinvaultError code `run` rejects with, or 'no error'. */
export async function asyncCodeOf(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    await run();
    return 'no error';
  } catch (e) {
    return outcomeOf(e);
  }
}
