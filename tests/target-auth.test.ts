/**
 * kinvaultd target auth NAME, end to end with the built commands against the Drive test
 * server's consent page and token endpoint (tests/support/drive-server/oauth.ts): the test
 * acts as the browser (it opens the printed address, follows Google's redirect to the
 * loopback address, or pastes that address as a user would). A wrong state is refused;
 * the token file is written 0600 and atomically, never through a symbolic link; no token,
 * code or client secret is printed; a refused exchange fails with exit 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initCoordinator,
  kinvaultdPath,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
} from './support/kinvaultd.js';
import { start as startDrive, type DriveServer } from './support/drive-server/index.js';

const CLIENT_ID = 'kinvault-family.apps.googleusercontent.com';
const CLIENT_SECRET = 'GOCSPX-test-client-secret-never-printed';

interface Run {
  child: ChildProcess;
  output: () => string;
  stdout: () => string;
  /** The consent page's address, once printed. */
  consentUrl: Promise<URL>;
  exit: Promise<number | null>;
  paste(line: string): void;
}

describe('kinvaultd target auth (built commands, Drive test server)', () => {
  let c: Coordinator;
  let work: string;
  let drive: DriveServer;
  let tokenFile: string;
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);

  beforeAll(async () => {
    work = await traversableTempDir('kinvault-target-auth-');
    drive = await startDrive({
      dir: join(work, 'drive'),
      clients: { [CLIENT_ID]: CLIENT_SECRET },
      refreshTokens: [],
      validTokens: [],
    });
    const { dataDir, port } = await initCoordinator('kinvault-target-auth-data-');
    c = await startCoordinator(dataDir, port);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await drive?.stop();
    await removeTempDirs();
  });

  function authorise(...extra: string[]): Run {
    const child = spawn(
      process.execPath,
      [kinvaultdPath, 'target', 'auth', 'drive', '--data-dir', c.dataDir, ...extra],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    let found: (u: URL) => void;
    const consentUrl = new Promise<URL>((resolve) => (found = resolve));
    const seen = (d: Buffer) => {
      out += d.toString();
      const m = /^\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)$/m.exec(out);
      if (m) found(new URL(m[1]!));
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    return {
      child,
      output: () => out,
      stdout: () => stdout,
      consentUrl,
      exit,
      paste: (line) => void child.stdin!.write(line + '\n'),
    };
  }

  /** What the browser does on the consent page: Google's redirect to the loopback address. */
  async function consent(url: URL): Promise<URL> {
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location')!);
  }

  const savedToken = async () =>
    (JSON.parse(await readFile(tokenFile, 'utf8')) as { refresh_token: string }).refresh_token;

  it('adds a Drive target without an authorisation yet, and says to run target auth', async () => {
    const credentials = join(work, 'client.json');
    tokenFile = join(work, 'token.json');
    await writeFile(
      credentials,
      JSON.stringify({
        installed: {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          auth_uri: `${drive.rootUrl}auth`,
          token_uri: `${drive.rootUrl}token`,
          redirect_uris: ['http://localhost'],
        },
      }),
      { mode: 0o600 },
    );
    const url = `gdrive://Kinvault?credentials=${credentials}&token=${tokenFile}&api=${drive.rootUrl}`;
    const added = await kd('target', 'add', 'drive', url, '--role', 'staging');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('kinvaultd target auth drive');
    expect((await kd('target', 'test', 'drive')).code).toBe(1);
    const unknown = await kd('target', 'auth', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no target "nope"/);
    await mkdir(join(work, 'usb'));
    const usb = `file://${join(work, 'usb')}`;
    expect(
      (await kd('target', 'add', 'usb', usb, '--role', 'staging', '--allow-same-disk')).code,
    ).toBe(0);
    const notDrive = await kd('target', 'auth', 'usb');
    expect(notDrive.code).toBe(2);
    expect(notDrive.stderr).toMatch(/not a Google Drive target/);
    expect((await kd('target', 'auth', 'drive', '--port', '80')).code).toBe(2);
  });

  it('takes the browser coming back to the loopback address; a wrong state is refused', async () => {
    const run = authorise();
    const consentUrl = await run.consentUrl;
    const p = consentUrl.searchParams;
    expect(p.get('scope')).toBe('https://www.googleapis.com/auth/drive.file');
    expect(p.get('access_type')).toBe('offline');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('client_id')).toBe(CLIENT_ID);
    expect(p.get('state')!.length).toBeGreaterThanOrEqual(43);
    const redirect = new URL(p.get('redirect_uri')!);
    expect(redirect.hostname).toBe('127.0.0.1');

    const answer = await consent(consentUrl);
    expect(answer.origin).toBe(redirect.origin);
    const forged = new URL(answer);
    forged.searchParams.set('state', 'x'.repeat(43));
    const refused = await fetch(forged);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toMatch(/state/);
    expect(run.child.exitCode).toBeNull(); // still waiting for the right answer

    const page = await fetch(answer);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/can now use your Google Drive/);
    expect(await run.exit).toBe(0);
    expect(run.output()).toMatch(/Target "drive" works/);

    expect((await lstat(tokenFile)).mode & 0o777).toBe(0o600);
    const refresh = await savedToken();
    expect(drive.refreshTokens!.has(refresh)).toBe(true);
    for (const secret of [refresh, CLIENT_SECRET, answer.searchParams.get('code')!])
      expect(run.output()).not.toContain(secret);
    for (const access of drive.validTokens!) expect(run.output()).not.toContain(access);
    expect((await kd('target', 'test', 'drive')).code).toBe(0);
  });

  it('takes the address pasted from the browser, replacing the token file atomically', async () => {
    const before = await savedToken();
    const run = authorise('--json');
    const consentUrl = await run.consentUrl;
    const answer = await consent(consentUrl);
    run.paste('not an address');
    run.paste(consentUrl.href); // Google's page, with this flow's state but no answer yet
    run.paste(answer.href.replace(/state=[^&]+/, 'state=stale'));
    await expect.poll(() => run.output(), { timeout: 10_000 }).toMatch(/not for this request/);
    expect(run.output()).toMatch(/That address holds no answer from Google/);
    run.paste(`  ${answer.href}  `);
    expect(await run.exit).toBe(0);
    expect(run.output()).toMatch(/That is not an address/);
    expect(JSON.parse(run.stdout())).toMatchObject({
      target: 'drive',
      authorised: true,
      tokenFile,
    });
    const after = await savedToken();
    expect(after).not.toBe(before);
    expect(run.output()).not.toContain(after);
    expect((await lstat(tokenFile)).mode & 0o777).toBe(0o600);
    expect((await readdir(work)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails with exit 1 when Google refuses the code, or the answer is a refusal', async () => {
    const before = await savedToken();
    const run = authorise();
    const answer = await consent(await run.consentUrl);
    answer.searchParams.set('code', '4/0not-a-code-google-gave');
    run.paste(answer.href);
    expect(await run.exit).toBe(1);
    expect(run.output()).toMatch(/Google refused the authorisation \(invalid_grant/);
    expect(await savedToken()).toBe(before);

    drive.denyNextConsent();
    const denied = authorise();
    const page = await fetch(await consent(await denied.consentUrl));
    expect(page.status).toBe(400);
    expect(await denied.exit).toBe(1);
    expect(denied.output()).toMatch(/Access was not allowed in the browser/);
    expect(await savedToken()).toBe(before);
  });

  it('refuses to write the token through a symbolic link', async () => {
    const elsewhere = join(work, 'elsewhere.json');
    await writeFile(elsewhere, '{}', { mode: 0o600 });
    await rm(tokenFile);
    await symlink(elsewhere, tokenFile);
    const run = authorise();
    // Refused before the flow starts, so that nobody consents for nothing.
    expect(await run.exit).toBe(1);
    expect(run.output()).toMatch(/is a symbolic link/);
    expect(run.output()).not.toMatch(/\/auth\?/);
    expect(await readFile(elsewhere, 'utf8')).toBe('{}');
    expect((await lstat(tokenFile)).isSymbolicLink()).toBe(true);
  });
});
