/**
 * Checks of the stored copies. For now the NAS tier: every registered pack is read and
 * hashed (its name is its SHA-256); a missing file is recorded as missing, a mismatch or
 * a file that cannot be read as damaged, and a good copy's verification time is
 * refreshed. Then packs of which nothing is left but whose every blob a later backup
 * stored again are dropped from the index. Damaged packs stay (their other blobs can
 * still be read) unless the NAS owner asks to set aside those stored again
 * (`dropReplaced`). Knows nothing of the CLI.
 */
import type { PacksService } from './packs.service.js';

export interface CheckProgress {
  packs: number;
  bytes: number;
  totalPacks: number;
  totalBytes: number;
}

export interface BadPack {
  pack: string;
  detail: string | null;
  /** Every blob of it is in another available pack: nothing of it is at risk. */
  replaced: boolean;
}

export interface CheckResult {
  packs: number;
  bytes: number;
  ok: number;
  damaged: BadPack[];
  missing: BadPack[];
  /** Missing packs whose every blob is stored again elsewhere: dropped from the index. */
  retired: string[];
  /** Damaged packs stored again elsewhere, set aside in quarantine/ (when asked). */
  quarantined: string[];
}

const PAGE = 1000;

export function checkService(packs: PacksService) {
  /** Hashes every registered pack, two at a time (hashing is CPU-bound; the NAS keeps serving). */
  async function hashAll(onProgress?: (p: CheckProgress) => void) {
    const totals = await packs.totals();
    const progress: CheckProgress = {
      packs: 0,
      bytes: 0,
      totalPacks: totals.packs,
      totalBytes: totals.registeredBytes,
    };
    const one = async (p: { name: string; size: number }) => {
      await packs.verifyNas(p.name);
      progress.packs++;
      progress.bytes += p.size;
      onProgress?.(progress);
    };
    for (let after: string | null = null; ;) {
      const page = await packs.page(after, PAGE);
      if (page.length === 0) break;
      after = page[page.length - 1]!.name;
      let next = 0;
      const worker = async () => {
        while (next < page.length) await one(page[next++]!);
      };
      await Promise.all([worker(), worker()]);
    }
    return progress;
  }

  return {
    async checkNas(
      opts: { dropReplaced?: boolean; onProgress?: (p: CheckProgress) => void } = {},
    ): Promise<CheckResult> {
      const done = await hashAll(opts.onProgress);
      const retired = await packs.retireLost();
      const quarantined = opts.dropReplaced ? await packs.dropReplaced() : [];
      const bad = (await packs.problems()).filter((p) => p.location === 'nas');
      const list = (state: string) =>
        bad
          .filter((p) => p.state === state)
          .map((p) => ({ pack: p.pack, detail: p.detail, replaced: p.replaced }))
          .sort((a, b) => a.pack.localeCompare(b.pack));
      const damaged = list('damaged');
      const missing = list('missing');
      return {
        packs: done.packs,
        bytes: done.bytes,
        ok: done.packs - damaged.length - missing.length,
        damaged,
        missing,
        retired,
        quarantined,
      };
    },
  };
}

export type CheckService = ReturnType<typeof checkService>;
