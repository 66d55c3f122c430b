/** kinvaultd keys [restore ID]: the household's replaced key files, and undoing a change. */
import { withContext } from './context.js';

export async function runKeysList(opts: { dataDir: string; json?: boolean }): Promise<void> {
  const versions = await withContext(opts.dataDir, (ctx) => ctx.services.household.history());
  if (opts.json) {
    console.log(JSON.stringify(versions));
    return;
  }
  if (versions.length === 0) {
    console.log('No key file of this household was ever replaced.');
    return;
  }
  console.log(
    'VERSION  KIND           REPLACED AT               BY                SHA-256 (of the old file)',
  );
  for (const v of versions)
    console.log(
      `${v.id.padStart(7)}  ${v.kind.padEnd(13)}  ${v.replacedAt.padEnd(24)}  ${v.replacedBy.padEnd(16)}  ${v.sha256}`,
    );
  console.log(
    '"kinvaultd keys restore VERSION" puts that key file back (the current one is kept too).',
  );
}

export async function runKeysRestore(
  id: string,
  opts: { dataDir: string; json?: boolean },
): Promise<void> {
  const r = await withContext(opts.dataDir, (ctx) => ctx.services.household.restoreVersion(id));
  if (opts.json) {
    console.log(JSON.stringify({ restored: id, ...r }));
    return;
  }
  console.log(
    `The household's ${r.kind} key file is back to version ${id} (SHA-256 ${r.sha256}…). The one it replaced is kept in "kinvaultd keys".`,
  );
}
