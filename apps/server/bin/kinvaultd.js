#!/usr/bin/env node
// The kinvaultd command (npm links it onto PATH). It checks the Node.js version before
// loading the coordinator, so that an old Node says what to do instead of failing obscurely.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `kinvaultd: needs Node.js 22.12 or later (24 LTS recommended), but "${process.execPath}" is ${process.version}. Install a newer Node.js (https://nodejs.org) and put it first on PATH.`,
  );
  process.exit(1);
}
const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(
    `kinvaultd: ${fileURLToPath(main)} is missing. In a clone of Kinvault, run "npm ci && npm run build" first.`,
  );
  process.exit(1);
}
await import(main.href);
