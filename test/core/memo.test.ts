import { describe, expect, it } from 'vitest';
import { memoize } from '../../lambda/core/memo';
import { FakeClock, tick } from './fakes';

/** A load the test settles by hand, counting how often it ran. */
function controlled<T>() {
  const pending: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  const load = () => new Promise<T>((resolve, reject) => pending.push({ resolve, reject }));
  return { load, pending };
}

describe('memoize', () => {
  it('shares one load among concurrent callers and keeps its value', async () => {
    const { load, pending } = controlled<number>();
    const memo = memoize(load);
    const a = memo();
    const b = memo();
    expect(a).toBe(b);
    expect(pending).toHaveLength(1);
    pending[0]!.resolve(42);
    expect(await a).toBe(42);
    expect(await memo()).toBe(42);
    expect(pending).toHaveLength(1);
  });

  it('forgets a failure, so the next caller retries', async () => {
    let calls = 0;
    const memo = memoize(async () => {
      calls++;
      if (calls === 1) throw new Error('down');
      return 'up';
    });
    await expect(memo()).rejects.toThrow('down');
    await tick();
    expect(await memo()).toBe('up');
    expect(await memo()).toBe('up');
    expect(calls).toBe(2);
  });

  it('a failure of a load already replaced does not forget the newer one', async () => {
    const { load, pending } = controlled<string>();
    const memo = memoize(load);
    const first = memo();
    memo.reset();
    const second = memo();
    expect(pending).toHaveLength(2);
    pending[0]!.reject(new Error('old failure'));
    await expect(first).rejects.toThrow('old failure');
    await tick();
    expect(memo()).toBe(second);
    pending[1]!.resolve('fresh');
    expect(await memo()).toBe('fresh');
    expect(pending).toHaveLength(2);
  });

  it('reset makes the next call load afresh', async () => {
    let calls = 0;
    const memo = memoize(async () => ++calls);
    expect(await memo()).toBe(1);
    memo.reset();
    expect(await memo()).toBe(2);
    expect(await memo()).toBe(2);
  });

  it('with a lifetime, loads again once the value is that old, not before', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const memo = memoize(async () => ++calls, { ms: 1000, clock });
    expect(await memo()).toBe(1);
    clock.advance(999);
    expect(await memo()).toBe(1);
    clock.advance(1);
    expect(await memo()).toBe(2);
    // The lifetime counts from the new load.
    clock.advance(999);
    expect(await memo()).toBe(2);
  });
});
