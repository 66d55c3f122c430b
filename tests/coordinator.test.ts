/**
 * End to end: the built kinvaultd, with embedded PostgreSQL, over real HTTPS.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnrollmentCode } from '@kinvault/protocol';
import {
  freePort,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
  removeTempDirs,
} from './support/kinvaultd.js';

const run = runKinvaultd;

/** GET over HTTPS, trusting exactly the certificate with this SHA-256 fingerprint. */
function pinnedGet(url: string, fingerprint: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A fresh connection per request (agent: false), so that every one is checked.
    const req = request(url, { rejectUnauthorized: false, agent: false });
    req.on('socket', (socket) => {
      socket.on('secureConnect', () => {
        const cert = (socket as TLSSocket).getPeerCertificate();
        const got = cert.fingerprint256.replace(/:/g, '').toLowerCase();
        if (got !== fingerprint)
          req.destroy(new Error(`certificate fingerprint ${got} is not the pinned ${fingerprint}`));
      });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('kinvaultd (built command, embedded PostgreSQL, HTTPS)', () => {
  let dataDir: string;
  let port: number;
  let server: Coordinator | undefined;

  beforeAll(async () => {
    dataDir = join(await traversableTempDir('kinvaultd-e2e-'), 'data');
    port = await freePort();
    const init = await run(['init', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toContain(`kinvaultd start --data-dir ${dataDir}`);
  }, 300_000);

  afterAll(async () => {
    if (server && server.process.exitCode === null) server.process.kill('SIGKILL');
    await removeTempDirs();
  });

  it('refuses to initialise twice, and explains bad flags', async () => {
    const again = await run(['init', '--data-dir', dataDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already initialised/);
    const badListen = await run([
      'init',
      '--data-dir',
      join(dataDir, '..', 'other'),
      '--listen',
      'nowhere',
    ]);
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toMatch(/--listen "nowhere" is not HOST:PORT/);
    const notEmpty = join(dataDir, '..', 'full');
    await mkdir(notEmpty);
    await writeFile(join(notEmpty, 'x'), 'x');
    expect((await run(['init', '--data-dir', notEmpty])).stderr).toMatch(/not empty/);
    expect((await run(['start', '--data-dir', join(dataDir, '..', 'nothing')])).stderr).toMatch(
      /not a Kinvault data directory/,
    );
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/device/);
  }, 60_000);

  it('starts, serves /health on the pinned certificate, manages devices, stops cleanly on SIGTERM', async () => {
    server = await startCoordinator(dataDir, port);

    const added = await run(['device', 'add', 'anna-laptop', '--data-dir', dataDir, '--json']);
    expect(added.code).toBe(0);
    const { code } = JSON.parse(added.stdout) as { code: string };
    const enrollment = decodeEnrollmentCode(code);
    expect(enrollment.url).toBe(`https://127.0.0.1:${port}`);
    expect(enrollment.device).toBe('anna-laptop');

    const health = await pinnedGet(`${enrollment.url}/health`, enrollment.fingerprint);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', service: 'kinvaultd' });
    await expect(pinnedGet(`${enrollment.url}/health`, 'ab'.repeat(32))).rejects.toThrow(
      /not the pinned/,
    );

    expect((await run(['device', 'add', 'anna-laptop', '--data-dir', dataDir])).code).toBe(2);
    expect((await run(['device', 'add', 'bad name!', '--data-dir', dataDir])).stderr).toMatch(
      /not a usable device name/,
    );
    const list = JSON.parse(
      (await run(['device', 'list', '--json', '--data-dir', dataDir])).stdout,
    ) as { name: string; state: string }[];
    expect(list).toEqual([
      expect.objectContaining({ name: 'anna-laptop', state: 'waiting for enrollment' }),
    ]);
    expect((await run(['device', 'revoke', 'anna-laptop', '--data-dir', dataDir])).code).toBe(0);
    const revoked = JSON.parse(
      (await run(['device', 'list', '--json', '--data-dir', dataDir])).stdout,
    ) as { state: string }[];
    expect(revoked[0]!.state).toBe('revoked');

    expect(await server.stop('SIGTERM')).toBe(0);
    expect(server.log()).toMatch(/"msg":"stopped"/);
    // The embedded database stopped with it: a command can start it again on its own.
    expect((await run(['device', 'list', '--json', '--data-dir', dataDir])).code).toBe(0);
  }, 300_000);
});
