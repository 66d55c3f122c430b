/**
 * Where the passphrase comes from: --passphrase-file, KINVAULT_PASSPHRASE, or a prompt
 * with echo off when there is a terminal.
 */
import { readFile } from 'node:fs/promises';
import { KinvaultError } from '@kinvault/protocol';

async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
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

export interface PassphraseOptions {
  passphraseFile?: string;
  /** Ask twice (a new passphrase). */
  confirm?: boolean;
}

export async function getPassphrase(opts: PassphraseOptions): Promise<string> {
  if (opts.passphraseFile) {
    const text = await readFile(opts.passphraseFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Cannot read the passphrase file ${opts.passphraseFile}: ${e.code ?? e.message}.`,
      );
    });
    const passphrase = text.replace(/\r?\n$/, '');
    if (!passphrase)
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `The passphrase file ${opts.passphraseFile} is empty.`,
      );
    return passphrase;
  }
  if (process.env.KINVAULT_PASSPHRASE) return process.env.KINVAULT_PASSPHRASE;
  if (!process.stdin.isTTY) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      'A passphrase is needed: give --passphrase-file FILE or set KINVAULT_PASSPHRASE (there is no terminal to ask on).',
    );
  }
  for (;;) {
    const first = await promptHidden(
      opts.confirm ? 'New household passphrase: ' : 'Household passphrase: ',
    );
    if (!opts.confirm) return first;
    if (first.length < 8) {
      process.stderr.write('Use at least 8 characters; a few unrelated words are best.\n');
      continue;
    }
    if ((await promptHidden('Repeat it: ')) === first) return first;
    process.stderr.write('They differ; try again.\n');
  }
}
