/**
 * The mark on the errors of a Google Drive target that has no authorisation (yet, or any
 * more): "kinvaultd target auth NAME" is what fixes them. `target add` accepts such a
 * target, and says to run it.
 */
import { KinvaultError } from '@kinvault/protocol';

const KEY = 'needsAuthorisation';

export const needsAuthorisationDetails = { [KEY]: true } as const;

export function needsAuthorisation(e: unknown): boolean {
  return e instanceof KinvaultError && e.details[KEY] === true;
}
