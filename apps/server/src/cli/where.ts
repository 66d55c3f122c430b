/** kinvaultd where PACK|SNAPSHOT: where the copies of a pack, or of a snapshot's packs, are. */
import { withContext } from './context.js';

export async function runWhere(ref: string, opts: { dataDir: string; json?: boolean }) {
  const found = await withContext(opts.dataDir, (ctx) => ctx.targets.where(ref));
  if (opts.json) return console.log(JSON.stringify({ [found.kind]: ref, packs: found.packs }));
  for (const p of found.packs) {
    const at = p.locations.map((l) =>
      l.state === 'ok' ? l.location : `${l.location} (${l.state})`,
    );
    console.log(`${p.pack}  ${at.join(', ') || 'nowhere'}`);
  }
}
