/**
 * Giving Kinvault access to a Google Drive from a NAS without a browser: Google's flow for
 * desktop apps (authorisation code with PKCE, redirect to a loopback address), the one
 * Google documents for command-line tools since it ended the copy-and-paste ("out of
 * band") flow in 2022–2023.
 *
 * - A small HTTP server listens on 127.0.0.1 (a random port, or the one given, for an SSH
 *   tunnel) and is the redirect_uri. The consent page's address carries a random `state`
 *   and the S256 challenge of a random code verifier.
 * - The answer is taken from the browser's redirect when it reaches the server (browser
 *   on the NAS, or on a laptop through `ssh -L PORT:127.0.0.1:PORT nas`), or from the
 *   address the user copies out of the browser's address bar and pastes (`paste`): the
 *   page "cannot be reached", but its address holds the code.
 * - An answer whose `state` differs is refused and the flow goes on waiting; the first
 *   answer with the right state ends it: its code is exchanged (once) for the refresh token.
 * Tokens and codes are never printed, logged or put in an error message.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { KinvaultError } from '@kinvault/protocol';
import { driveConsent } from './gdrive.store.js';

export interface DriveAuthorization {
  /** The consent page to open in a browser. */
  url: string;
  /** Where the browser is sent back: http://127.0.0.1:PORT/ */
  redirectUri: string;
  port: number;
  /**
   * An address pasted by the user. Resolves once it was taken (the flow then ends);
   * INVALID_ARGUMENT when it is not this flow's answer (the flow goes on waiting).
   */
  paste(address: string): Promise<void>;
  /** The refresh token, once an answer with this flow's state was exchanged. */
  refreshToken: Promise<string>;
  /** Stops listening (also done by itself when the flow ends). */
  close(): Promise<void>;
}

const base64url = (b: Buffer) => b.toString('base64url');

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const notTheAnswer = (why: string) =>
  new KinvaultError(
    'INVALID_ARGUMENT',
    `${why} Paste the whole address from the browser's address bar after you allowed access (it begins with http://127.0.0.1: and holds "state=" and "code="), or open the address printed last.`,
  );

export async function startDriveAuthorization(options: {
  credentialsFile: string;
  /** 0 (the default): a random free port. */
  port?: number;
}): Promise<DriveAuthorization> {
  const consent = await driveConsent(options.credentialsFile);
  const state = base64url(randomBytes(32));
  const verifier = base64url(randomBytes(48)); // 64 characters (RFC 7636: 43–128)
  const challenge = base64url(createHash('sha256').update(verifier).digest());
  let settle!: { resolve: (token: string) => void; reject: (e: unknown) => void };
  const refreshToken = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  refreshToken.catch(() => {}); // the caller's to handle; never unhandled
  let taken = false;

  const server = createServer((req, res) => void browserAnswer(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new KinvaultError(
          'FAILED_PRECONDITION',
          `Cannot listen on 127.0.0.1:${options.port ?? 0} for Google's answer (${e.code}): give another --port, or leave it out for a free one.`,
        ),
      ),
    );
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const redirectUri = `http://127.0.0.1:${port}/`;
  // Answers in flight are finished first (a second at most), then every connection ends.
  const close = () =>
    new Promise<void>((resolve) => {
      const late = setTimeout(() => server.closeAllConnections(), 1000);
      server.close(() => {
        clearTimeout(late);
        resolve();
      });
      server.closeIdleConnections();
    });

  /** Takes an answer; throws (INVALID_ARGUMENT) for one that is not this flow's. */
  async function take(answer: URL): Promise<void> {
    const p = answer.searchParams;
    const given = p.get('state');
    // (the consent page's own address carries the state too, but neither code nor error)
    if (p.get('code') === null && p.get('error') === null)
      throw notTheAnswer('That address holds no answer from Google.');
    if (given === null || !sameSecret(given, state))
      throw notTheAnswer(
        'That answer is not for this request (its "state" differs; it may be from an earlier try), so it was refused.',
      );
    if (taken) return;
    taken = true;
    const error = p.get('error');
    const code = p.get('code');
    try {
      if (error || !code)
        throw new KinvaultError(
          'UNAUTHORIZED',
          error === 'access_denied'
            ? 'Access was not allowed in the browser (Cancel was clicked, or the Google account is not a test user of the app). Run "kinvaultd target auth NAME" again and click Continue / Allow.'
            : `Google answered ${(error ?? 'no code').slice(0, 60)} instead of an authorisation. Run "kinvaultd target auth NAME" again.`,
        );
      settle.resolve(await consent.exchange({ code, codeVerifier: verifier, redirectUri }));
    } catch (e) {
      settle.reject(e);
    }
    void close(); // no more answers are taken; the one in flight is finished
  }

  async function browserAnswer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', redirectUri);
    const reply = (status: number, text: string) => {
      res.writeHead(status, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'close',
      });
      res.end(`<!doctype html><meta charset="utf-8"><title>Kinvault</title><p>${text}</p>`);
    };
    if (req.method !== 'GET' || url.pathname !== '/') return reply(404, 'Not found.');
    try {
      await take(url);
      await refreshToken;
      reply(200, 'Kinvault can now use your Google Drive. You can close this page.');
    } catch (e) {
      reply(400, escapeHtml(e instanceof Error ? e.message : String(e)));
    }
  }

  async function paste(address: string): Promise<void> {
    const text = address.trim().replace(/^["'<]|[">']$/g, '');
    if (!URL.canParse(text)) throw notTheAnswer('That is not an address.');
    await take(new URL(text));
  }

  const url = consent.consentUrl({ redirectUri, state, codeChallenge: challenge });
  return { url, redirectUri, port, paste, refreshToken, close };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Refuses (FAILED_PRECONDITION) a token path that is a symbolic link or not a regular
 * file: checked before the flow starts, so that nobody consents for nothing, and again
 * when the token is written.
 */
export async function checkTokenPath(path: string): Promise<void> {
  const existing = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (existing && !existing.isFile())
    throw new KinvaultError(
      'FAILED_PRECONDITION',
      `${path} is ${existing.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; Kinvault writes its Google Drive token only to a plain file. Give the real path in the target's token= parameter, or remove it.`,
    );
}

/**
 * Writes the token file as JSON `{"refresh_token": …}`, mode 0600, atomically (a new file
 * beside it, synced, renamed over it). Refuses a path that is a symbolic link or not a
 * regular file, and never opens anything through a link.
 */
export async function writeTokenFile(path: string, refreshToken: string): Promise<void> {
  await checkTokenPath(path);
  const dir = dirname(path);
  const temporary = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  let file;
  try {
    file = await open(temporary, flags, 0o600);
  } catch (e) {
    throw new KinvaultError(
      'FAILED_PRECONDITION',
      `Cannot write the Google Drive token beside ${path} (${(e as NodeJS.ErrnoException).code}): does the folder ${dir} exist, and may this user write there?`,
    );
  }
  try {
    await file.writeFile(JSON.stringify({ refresh_token: refreshToken }) + '\n');
    await file.sync();
    await file.close();
    await rename(temporary, path);
  } catch (e) {
    await file.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw e;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
