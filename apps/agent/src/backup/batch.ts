/** Small concurrency helpers for the backup pipeline. */

/** Runs fn over items with at most `limit` in flight; results in order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Collects lookups into batches: `ask(key)` resolves once the batch it joined has been
 * answered. A batch goes out when it is full or after `delayMs`.
 */
export class Batcher<K, V> {
  private pending = new Map<K, { resolve: (v: V) => void; reject: (e: unknown) => void }[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly answer: (keys: K[]) => Promise<Map<K, V>>,
    private readonly fallback: V,
    private readonly size = 512,
    private readonly delayMs = 10,
  ) {}

  ask(key: K): Promise<V> {
    return new Promise((resolve, reject) => {
      const waiting = this.pending.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else this.pending.set(key, [{ resolve, reject }]);
      if (this.pending.size >= this.size) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size === 0) return;
    this.answer([...batch.keys()]).then(
      (answers) => {
        for (const [k, ws] of batch) for (const w of ws) w.resolve(answers.get(k) ?? this.fallback);
      },
      (e: unknown) => {
        for (const ws of batch.values()) for (const w of ws) w.reject(e);
      },
    );
  }
}

/** Bounds the bytes in flight: `take` waits while the budget is spent. */
export class ByteBudget {
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async take(n: number): Promise<void> {
    // One item larger than the whole budget still goes through, alone.
    while (this.used > 0 && this.used + n > this.limit)
      await new Promise<void>((r) => this.waiters.push(r));
    this.used += n;
  }

  give(n: number): void {
    this.used -= n;
    for (const w of this.waiters.splice(0)) w();
  }
}
