/**
 * Checks of the stored copies. For now the NAS tier: every registered pack is read and
 * hashed (its name is its SHA-256), a missing file is recorded as missing, a mismatch
 * as damaged, and a good copy's verification time is refreshed. Bad packs whose every
 * blob a later backup stored again are then retired (dropped from the index, their file
 * deleted), so a repaired household checks clean. Knows nothing of the CLI.
 */
import type { PacksService } from './packs.service.js';

export interface CheckProgress {
  packs: number;
  bytes: number;
  totalPacks: number;
  totalBytes: number;
}

export interface CheckResult {
  packs: number;
  bytes: number;
  ok: number;
  damaged: { pack: string; detail: string | null }[];
  missing: { pack: string; detail: string | null }[];
  /** Bad packs whose every blob is stored again elsewhere: dropped from the index. */
  retired: string[];
}

const PAGE = 1000;

export function checkService(packs: PacksService) {
  return {
    async checkNas(onProgress?: (p: CheckProgress) => void): Promise<CheckResult> {
      const totals = await packs.totals();
      const progress: CheckProgress = {
        packs: 0,
        bytes: 0,
        totalPacks: totals.packs,
        totalBytes: totals.registeredBytes,
      };
      const result: CheckResult = {
        packs: 0,
        bytes: 0,
        ok: 0,
        damaged: [],
        missing: [],
        retired: [],
      };
      const checkOne = async (p: { name: string; size: number }) => {
        const found = await packs.verifyNas(p.name);
        result.packs++;
        result.bytes += p.size;
        if (found.state === 'ok') result.ok++;
        else result[found.state].push({ pack: p.name, detail: found.detail });
        progress.packs++;
        progress.bytes += p.size;
        onProgress?.(progress);
      };
      for (let after: string | null = null; ;) {
        const page = await packs.page(after, PAGE);
        if (page.length === 0) break;
        after = page[page.length - 1]!.name;
        // Two at a time: hashing is CPU-bound, and the NAS keeps serving meanwhile.
        let next = 0;
        const worker = async () => {
          while (next < page.length) await checkOne(page[next++]!);
        };
        await Promise.all([worker(), worker()]);
      }
      const retired = new Set((result.retired = await packs.retireReplaced()));
      const left = (list: CheckResult['damaged']) =>
        list.filter((p) => !retired.has(p.pack)).sort((a, b) => a.pack.localeCompare(b.pack));
      result.damaged = left(result.damaged);
      result.missing = left(result.missing);
      return result;
    },
  };
}

export type CheckService = ReturnType<typeof checkService>;
