/** kinvaultd device add | list | revoke. */
import { withContext } from './context.js';

export async function runDeviceAdd(
  name: string,
  opts: { dataDir: string; json?: boolean },
): Promise<void> {
  const r = await withContext(opts.dataDir, (ctx) => ctx.devices.add(name));
  if (opts.json) {
    console.log(JSON.stringify({ device: r.device.name, code: r.code, expiresAt: r.expiresAt }));
    return;
  }
  console.log(`Device "${r.device.name}" added. On that computer, run:

  kinvault setup ${r.code}

The code works once, until ${r.expiresAt}.`);
}

export async function runDeviceList(opts: { dataDir: string; json?: boolean }): Promise<void> {
  const devices = await withContext(opts.dataDir, (ctx) => ctx.devices.list());
  if (opts.json) {
    console.log(JSON.stringify(devices));
    return;
  }
  if (devices.length === 0) {
    console.log('No devices yet. Add one with "kinvaultd device add NAME".');
    return;
  }
  const width = Math.max(6, ...devices.map((d) => d.name.length));
  console.log(`${'DEVICE'.padEnd(width)}  STATE                   LAST SEEN`);
  for (const d of devices)
    console.log(`${d.name.padEnd(width)}  ${d.state.padEnd(22)}  ${d.lastSeenAt ?? '-'}`);
}

export async function runDeviceRevoke(
  name: string,
  opts: { dataDir: string; json?: boolean },
): Promise<void> {
  const d = await withContext(opts.dataDir, (ctx) => ctx.devices.revoke(name));
  console.log(
    opts.json ? JSON.stringify(d) : `Device "${d.name}" is revoked; its token no longer works.`,
  );
}
