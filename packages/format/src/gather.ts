/**
 * Gathers small byte strings bound for another thread into one buffer per message.
 * Each transferred or cloned ArrayBuffer costs an allocation and bookkeeping on both
 * sides (and counts towards V8's external memory); a backup of 20,000 small files sent
 * about five per file. With a gather, a message carries one buffer however many small
 * blobs, ids and sealed parts it holds.
 *
 * Contract: `add` copies nothing yet; `finish` copies every added string into one new
 * buffer, in order, hands each caller its view, and returns the buffer to transfer.
 * The added strings must not change between `add` and `finish`.
 */
export const SMALL = 64 * 1024;

export class Gather {
  private parts: Uint8Array[][] = [];
  private sinks: ((view: Uint8Array) => void)[] = [];
  private total = 0;

  /** Queues `parts` (their concatenation becomes one view, given to `into` by `finish`). */
  add(parts: readonly Uint8Array[], into: (view: Uint8Array) => void): void {
    this.parts.push([...parts]);
    this.sinks.push(into);
    for (const p of parts) this.total += p.byteLength;
  }

  /** Copies everything queued into one new buffer; null if nothing was queued. */
  finish(): ArrayBuffer | null {
    if (this.sinks.length === 0) return null;
    // Not zero-filled: every byte is written below.
    const buffer = Buffer.allocUnsafeSlow(this.total).buffer as ArrayBuffer;
    let at = 0;
    for (let i = 0; i < this.sinks.length; i++) {
      const start = at;
      for (const p of this.parts[i]!) {
        new Uint8Array(buffer, at, p.byteLength).set(p);
        at += p.byteLength;
      }
      this.sinks[i]!(new Uint8Array(buffer, start, at - start));
    }
    this.parts = [];
    this.sinks = [];
    this.total = 0;
    return buffer;
  }
}
