/** Sizes on the command line: "15GB", "40 MB", "1.5TB", "500MiB" (decimal and binary units). */
import { KinvaultError } from '@kinvault/protocol';

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNITS[(m?.[2] || 'b').toLowerCase()];
  const bytes = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${flag} ${text}: give a size such as 15GB, 500MB or 2TiB.`,
    );
  return bytes;
}
