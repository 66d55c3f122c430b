/**
 * Setting a file's times from a snapshot's nanoseconds (for restores; pure: the caller
 * hands the result to utimes).
 *
 * Node takes times in seconds as a double (or a numeric string, which it parses to one),
 * and a double near today's dates resolves only ~240 ns. Node 20's libuv then truncates
 * to whole microseconds, Node 22 and later's to whole nanoseconds. Aimed at the exact
 * time, a file came back 1 µs off about one time in ten (the double fell just below the
 * microsecond). So a restore aims at the middle of the snapshot's microsecond: whatever
 * the rounding and truncation, the file then gets exactly that microsecond (until about
 * the year 2242). The nanoseconds below it are not restored. Node refuses negative
 * numbers (it substitutes "now"), but not negative numeric strings, so the time is
 * handed over as a decimal string; times before 1901-12-13 are clamped by Node to that
 * date (a 32-bit limit in its conversion).
 */

/** The snapshot time in whole microseconds (truncated toward zero, as compared). */
export function microseconds(ns: bigint): bigint {
  return ns / 1000n;
}

/** The `atime`/`mtime` argument for utimes/futimes/lutimes that sets `microseconds(ns)`. */
export function utimeArg(ns: bigint): string {
  const us = microseconds(ns);
  const negative = us < 0n || (us === 0n && ns < 0n);
  // Middle of the microsecond, on the side away from zero (truncation is toward zero).
  const aimed = us * 1000n + (negative ? -500n : 500n);
  const abs = aimed < 0n ? -aimed : aimed;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0');
  return `${aimed < 0n ? '-' : ''}${abs / 1_000_000_000n}.${frac}`;
}
