/** Sizes in target URLs: "5MiB", "256KiB", "1GiB" or plain bytes (binary units only). */
const UNITS: Record<string, number> = { '': 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

/** The bytes `text` names, or null when it is not a size. */
export function parseUrlSize(text: string): number | null {
  const m = /^(\d{1,10})(KiB|MiB|GiB)?$/.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]) * UNITS[m[2] ?? '']!;
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : null;
}

/** A size as a URL gives it back: in the largest binary unit that divides it. */
export function formatUrlSize(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'])
    if (bytes % UNITS[unit]! === 0) return `${bytes / UNITS[unit]!}${unit}`;
  return String(bytes);
}
