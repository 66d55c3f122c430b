import { describe, expect, it } from 'vitest';
import { answered, backoffSchedule, BACKOFF_S, withRetry, type RetryPolicy } from './retry.js';

const refused = () =>
  Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));

describe('retries after connection failures', () => {
  it('waits 0.25 s doubling, then 30 s each, adding up to the window', () => {
    expect(BACKOFF_S).toEqual([0.25, 0.5, 1, 2, 4, 8, 15, 30, 29.25]);
    expect(backoffSchedule(2)).toEqual([0.25, 0.5, 1, 0.25]);
    expect(backoffSchedule(0)).toEqual([]);
    expect(backoffSchedule(300).reduce((a, b) => a + b, 0)).toBe(300);
  });

  it('gives up once the outage has lasted the window, for calls made one after another too', async () => {
    const policy: RetryPolicy = { long: true, contacted: true, schedule: backoffSchedule(0.4) };
    let calls = 0;
    const failing = () => (calls++, refused());
    const started = Date.now();
    await expect(withRetry('a', failing, undefined, policy)).rejects.toThrow(/ECONNREFUSED/);
    // Waits of 0.25 s, then 0.15 s (what was left), then no more (or one of a few ms,
    // if the timer fired a little before the window's end).
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThanOrEqual(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    // The next call during the same outage is not given a window of its own.
    calls = 0;
    await expect(withRetry('b', failing, undefined, policy)).rejects.toThrow(/ECONNREFUSED/);
    expect(calls).toBe(1);
    // An answer ends the outage: the next one has the whole window again; a 503
    // (stopping or starting) does not.
    answered(policy, 503);
    calls = 0;
    await expect(withRetry('c', failing, undefined, policy)).rejects.toThrow();
    expect(calls).toBe(1);
    answered(policy, 200);
    calls = 0;
    await expect(withRetry('d', failing, undefined, policy)).rejects.toThrow();
    expect(calls).toBeGreaterThan(1);
  });

  it('does not retry what is not a connection failure', async () => {
    let calls = 0;
    const policy: RetryPolicy = { long: true, contacted: true, schedule: backoffSchedule(5) };
    await expect(
      withRetry('x', () => (calls++, Promise.reject(new Error('HTTP 400'))), undefined, policy),
    ).rejects.toThrow('HTTP 400');
    expect(calls).toBe(1);
  });
});
