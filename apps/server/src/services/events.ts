/**
 * Live events for subscribers (agents, later the dashboard). Services publish; the
 * tRPC `events` subscription relays. Events carry no secrets: names, sizes, devices.
 */
import { EventEmitter } from 'node:events';

export type KinvaultEvent =
  | { type: 'pack.stored'; pack: string; size: number; device: string; at: string }
  | { type: 'snapshot.committed'; snapshot: string; device: string; at: string }
  /** A copy of a pack was found damaged or missing (by a read, a report or a check). */
  | {
      type: 'pack.damaged' | 'pack.missing';
      pack: string;
      location: string;
      detail: string;
      at: string;
    }
  /** A household key file was replaced (by a device, with a signature, or undone on the NAS). */
  | {
      type: 'household.keyfile.replaced';
      kind: string;
      by: string;
      /** First 16 hex digits of the SHA-256 of the old and the new key file. */
      from: string;
      to: string;
      at: string;
    }
  /** An agent reported bad blobs in a pack whose bytes still hash to its name. */
  | { type: 'pack.suspect'; pack: string; device: string; detail: string; at: string };

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(1000);
  }

  publish(event: KinvaultEvent): void {
    this.emitter.emit('event', event);
  }

  /** Events until `signal` aborts. */
  async *subscribe(signal?: AbortSignal): AsyncGenerator<KinvaultEvent> {
    const queue: KinvaultEvent[] = [];
    let wake: (() => void) | undefined;
    const onEvent = (e: KinvaultEvent) => {
      queue.push(e);
      wake?.();
    };
    this.emitter.on('event', onEvent);
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            signal?.addEventListener('abort', () => resolve(), { once: true });
          });
          wake = undefined;
          continue;
        }
        yield queue.shift()!;
      }
    } finally {
      this.emitter.off('event', onEvent);
    }
  }
}
