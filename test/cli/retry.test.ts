import { describe, expect, it } from 'vitest';
import { Backoff, DEFAULT_RETRY_FOR_SECONDS, parseRetryFor, retryAfterMs } from '../../cli/retry';

function timed(forMs: number, random = () => 1) {
  let now = 0;
  const waits: number[] = [];
  const backoff = new Backoff({ forMs, random, now: () => now, sleep: async (ms) => void (waits.push(ms), (now += ms)) });
  return { backoff, waits };
}

describe('Backoff', () => {
  it('doubles its ceiling from 250 ms up to 10 s, with full jitter below it', async () => {
    const { backoff, waits } = timed(60_000);
    for (let i = 0; i < 8; i++) expect(await backoff.next()).toBe(true);
    expect(waits).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    const jittered = timed(60_000, () => 0.5);
    await jittered.backoff.next();
    await jittered.backoff.next();
    expect(jittered.waits).toEqual([125, 250]);
  });

  it('never waits less than Retry-After', async () => {
    const { backoff, waits } = timed(60_000, () => 0);
    await backoff.next(3000);
    await backoff.next();
    expect(waits).toEqual([3000, 0]);
  });

  it('says false, without waiting, once the next wait would overrun the budget', async () => {
    const { backoff, waits } = timed(1000);
    expect(await backoff.next()).toBe(true); // 250
    expect(await backoff.next()).toBe(true); // 500, at 750
    expect(await backoff.next()).toBe(false); // 1000 more would end at 1750
    expect(waits).toEqual([250, 500]);
    expect(await timed(0).backoff.next()).toBe(false);
    expect(await timed(10_000).backoff.next(20_000)).toBe(false);
  });
});

describe('retryAfterMs and parseRetryFor', () => {
  it('reads delta-seconds and HTTP dates, and ignores what is neither', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });

  it('takes seconds, 0 or more; anything else is NaN, nothing is the default', () => {
    expect(parseRetryFor('0')).toBe(0);
    expect(parseRetryFor('2.5')).toBe(2.5);
    expect(parseRetryFor(undefined)).toBeUndefined();
    expect(parseRetryFor('-1')).toBeNaN();
    expect(parseRetryFor('x')).toBeNaN();
    expect(DEFAULT_RETRY_FOR_SECONDS).toBe(60);
  });
});
