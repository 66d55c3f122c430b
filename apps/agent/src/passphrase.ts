/**
 * Where secrets come from: a file flag, an environment variable, or a prompt with echo
 * off when there is a terminal. A new passphrase must pass the strength check however
 * it arrives (passphrase-strength.ts); at a prompt it is asked for twice.
 */
import { readFile } from 'node:fs/promises';
import { KinvaultError } from '@kinvault/protocol';
import { checkNewPassphrase } from './passphrase-strength.js';
import { addSecret } from './secrets.js';

async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the question shows: what is typed (or pasted) at once is never shown.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          return resolve(value);
        }
        if (ch === '\u0003') {
          done();
          return reject(new KinvaultError('INVALID_ARGUMENT', 'Cancelled.'));
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

/** A secret from `--<flag> FILE`, else the environment variable, else a hidden prompt. */
export interface SecretSource {
  /** The file named by the flag (its trailing newline is dropped). */
  file?: string;
  /** The flag's name, for messages (e.g. "--passphrase-file"). */
  flag: string;
  env: string;
  /** What it is, for messages and the prompt ("household passphrase"). */
  what: string;
}

async function fromFileOrEnv(s: SecretSource): Promise<{ value: string; from: string } | null> {
  const given = await fileOrEnv(s);
  addSecret(given?.value);
  return given;
}

async function fileOrEnv(s: SecretSource): Promise<{ value: string; from: string } | null> {
  if (s.file) {
    const text = await readFile(s.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Cannot read the ${s.what} file ${s.file} (${s.flag}): ${e.code ?? e.message}.`,
      );
    });
    const value = text.replace(/\r?\n$/, '');
    if (!value)
      throw new KinvaultError('INVALID_ARGUMENT', `The ${s.what} file ${s.file} is empty.`);
    return { value, from: `in ${s.file}` };
  }
  const value = process.env[s.env];
  return value ? { value, from: `in ${s.env}` } : null;
}

function noTerminal(s: SecretSource): never {
  throw new KinvaultError(
    'INVALID_ARGUMENT',
    `The ${s.what} is needed: give ${s.flag} FILE or set ${s.env} (there is no terminal to ask on).`,
  );
}

/** An existing secret (to unlock with): never refused for its strength. */
export async function existingSecret(s: SecretSource): Promise<string> {
  const given = await fromFileOrEnv(s);
  if (given) return given.value;
  if (!process.stdin.isTTY) noTerminal(s);
  const value = await promptHidden(`${s.what[0]!.toUpperCase()}${s.what.slice(1)}: `);
  addSecret(value);
  if (!value) throw new KinvaultError('INVALID_ARGUMENT', `No ${s.what} was given.`);
  return value;
}

/** A new passphrase: strong enough (file, environment or prompt), asked twice at a prompt. */
export async function newPassphrase(s: SecretSource): Promise<string> {
  const given = await fromFileOrEnv(s);
  if (given) {
    await checkNewPassphrase(given.value, given.from);
    return given.value;
  }
  if (!process.stdin.isTTY) noTerminal(s);
  for (;;) {
    const first = await promptHidden(`New ${s.what}: `);
    try {
      await checkNewPassphrase(first, 'you typed');
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      continue;
    }
    if ((await promptHidden('Repeat it: ')) === first) {
      addSecret(first);
      return first;
    }
    process.stderr.write('They differ; try again.\n');
  }
}

export const passphraseSource = (file?: string): SecretSource => ({
  file,
  flag: '--passphrase-file',
  env: 'KINVAULT_PASSPHRASE',
  what: 'household passphrase',
});

export const newPassphraseSource = (file?: string): SecretSource => ({
  file,
  flag: '--new-passphrase-file',
  env: 'KINVAULT_NEW_PASSPHRASE',
  what: 'household passphrase',
});

export const recoveryCodeSource = (file?: string): SecretSource => ({
  file,
  flag: '--recovery-code-file',
  env: 'KINVAULT_RECOVERY_CODE',
  what: 'recovery code',
});
