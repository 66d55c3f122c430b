/**
 * Terminal output shared by both commands: a self-rewriting status line on a TTY
 * (stderr; nothing when not a TTY), and plain sizes, durations and counts.
 */

/** One self-rewriting status line on stderr, redrawn at most 5 times a second. */
export function progressLine(enabled: boolean) {
  let last = 0;
  let shown = false;
  return {
    /** Shows `text()` (built only when the line is due for a redraw: 5 times a second). */
    update(text: () => string, force = false) {
      if (!enabled) return;
      const now = Date.now();
      if (!force && now - last < 200) return;
      last = now;
      shown = true;
      process.stderr.write(`\r\x1b[K${text()}`);
    },
    done() {
      if (enabled && shown) process.stderr.write('\r\x1b[K');
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}`
    : `${m}:${String(r).padStart(2, '0')}`;
}

/** "1 file", "2 files". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
