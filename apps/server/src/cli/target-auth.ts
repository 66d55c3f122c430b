/**
 * kinvaultd target auth NAME: gives Kinvault access to the Google Drive of a gdrive://
 * target, from a NAS without a browser (the flow: packages/stores/src/gdrive/authorize.ts).
 * Prints the consent page's address, takes Google's answer from the browser (directly
 * or through an SSH tunnel) or pasted from the address bar, writes the token file (0600)
 * and tests the target. Never prints a token.
 */
import { createInterface } from 'node:readline';
import { KinvaultError } from '@kinvault/protocol';
import {
  checkTokenPath,
  parseDriveUrl,
  startDriveAuthorization,
  writeTokenFile,
} from '@kinvault/stores';
import { withContext } from './context.js';

interface Options {
  dataDir: string;
  json?: boolean;
  port?: string;
  wait?: string;
}

function parseNumber(text: string | undefined, flag: string, min: number, max: number) {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${flag} ${text}: give a number from ${min} to ${max}.`,
    );
  return n;
}

function instructions(name: string, url: string, port: number): string {
  return [
    `To let Kinvault use the Google Drive of target "${name}":`,
    '',
    '1. Open this address in a web browser, on this computer or any other:',
    '',
    `   ${url}`,
    '',
    '2. Choose your Google account and allow Kinvault to see, edit, create and delete',
    '   only the Google Drive files it makes itself (if Google warns that it has not',
    '   verified the app: it is your own app; click "Advanced", then "Go to …").',
    '',
    `3. Google then sends the browser to http://127.0.0.1:${port}/…`,
    '   - If the browser runs on this computer, or on a laptop connected with',
    `     "ssh -L ${port}:127.0.0.1:${port} you@this-nas", the page says that Kinvault`,
    '     can use the Drive, and this command goes on by itself.',
    '   - Anywhere else that page "cannot be reached": that is expected. Copy the whole',
    "     address from the browser's address bar, paste it here and press Enter.",
    '',
  ].join('\n');
}

/** Lines typed or pasted on stdin, each handed to `take` (whose refusal is printed). */
function readPasted(take: (line: string) => Promise<void>) {
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    take(line).catch((e: unknown) =>
      console.error(`kinvaultd: ${e instanceof Error ? e.message : String(e)}`),
    );
  });
  return rl;
}

export async function runTargetAuth(name: string, opts: Options): Promise<void> {
  const port = parseNumber(opts.port, '--port', 1024, 65535);
  const minutes = parseNumber(opts.wait, '--wait', 1, 60) ?? 10;
  const target = await withContext(opts.dataDir, (ctx) => ctx.targets.get(name));
  if (!target.url.startsWith('gdrive:'))
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `Target "${name}" is not a Google Drive target: only gdrive:// targets are authorised with "kinvaultd target auth" (file:// needs nothing; s3:// takes its keys from the environment or ~/.aws).`,
    );
  const drive = parseDriveUrl(target.url);
  await checkTokenPath(drive.tokenFile);
  const flow = await startDriveAuthorization({ credentialsFile: drive.credentialsFile, port });
  const say = opts.json ? console.error : console.log;
  say(instructions(name, flow.url, flow.port));
  say(`Waiting for Google's answer (at most ${minutes} minutes)…`);
  const rl = readPasted((line) => flow.paste(line));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new KinvaultError(
            'UNAVAILABLE',
            `No answer from Google came within ${minutes} minutes; nothing was changed. Run "kinvaultd target auth ${name}" again (--wait gives more time).`,
          ),
        ),
      minutes * 60_000,
    );
  });
  let refreshToken: string;
  try {
    refreshToken = await Promise.race([flow.refreshToken, timeout]);
  } finally {
    clearTimeout(timer);
    rl.close();
    await flow.close();
  }
  await writeTokenFile(drive.tokenFile, refreshToken);
  say(`Google gave Kinvault access; the authorisation is saved in ${drive.tokenFile} (mode 0600).`);
  const tested = await withContext(opts.dataDir, (ctx) => ctx.targets.test(name)).catch(
    (e: unknown) => {
      if (e instanceof KinvaultError)
        throw new KinvaultError(
          e.code,
          `The authorisation was saved, but testing target "${name}" failed: ${e.message}`,
          { cause: e, details: e.details },
        );
      throw e;
    },
  );
  if (opts.json)
    return console.log(
      JSON.stringify({ target: name, authorised: true, tokenFile: drive.tokenFile, ...tested }),
    );
  console.log(
    `Target "${name}" works: a probe was written, read back, listed and deleted in ${tested.ms} ms.`,
  );
}
