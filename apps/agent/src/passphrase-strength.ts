/**
 * How hard a new household passphrase is to guess, with zxcvbn (the one file that
 * imports it). The passphrase key file is copied off-site (staging clouds, Glacier
 * volumes, relatives' homes), where anyone holding it can guess offline at the cost of
 * one Argon2id (256 MiB) per guess, so a new passphrase must reach zxcvbn's score 3 of
 * 4 ("safely unguessable: moderate protection from an offline slow-hash attack"),
 * whichever way it arrives (prompt, file or environment). Unlocking with an existing
 * passphrase is never refused for its strength.
 */
import { KinvaultError } from '@kinvault/protocol';

export const MIN_SCORE = 3;
const MAX_CHARS = 256;

export interface Strength {
  score: number;
  /** What zxcvbn says is wrong, and what it suggests (English). */
  advice: string;
}

let checker: Promise<(p: string) => Strength> | undefined;

/** Loaded on first use: the dictionaries take a moment, and only a new passphrase needs them. */
function load(): Promise<(p: string) => Strength> {
  return (checker ??= (async () => {
    const [{ ZxcvbnFactory }, common, en] = await Promise.all([
      import('@zxcvbn-ts/core'),
      import('@zxcvbn-ts/language-common'),
      import('@zxcvbn-ts/language-en'),
    ]);
    const zxcvbn = new ZxcvbnFactory({
      dictionary: { ...common.dictionary, ...en.dictionary },
      graphs: common.adjacencyGraphs,
      translations: en.translations,
    });
    return (p: string) => {
      const r = zxcvbn.check(p.slice(0, MAX_CHARS));
      const advice = [r.feedback.warning, ...r.feedback.suggestions].filter(Boolean).join(' ');
      return { score: r.score, advice };
    };
  })());
}

export async function passphraseStrength(passphrase: string): Promise<Strength> {
  return (await load())(passphrase);
}

/** Throws INVALID_ARGUMENT, saying why and what to do, unless the passphrase is strong enough. */
export async function checkNewPassphrase(passphrase: string, from: string): Promise<void> {
  const s = await passphraseStrength(passphrase);
  if (s.score >= MIN_SCORE) return;
  throw new KinvaultError(
    'INVALID_ARGUMENT',
    `The new passphrase ${from} is too easy to guess (strength ${s.score} of 4; at least ${MIN_SCORE} is needed).${s.advice ? ` ${s.advice}` : ''} A few unrelated words make a good one, e.g. "violet canoe ledger spoon".`,
  );
}
