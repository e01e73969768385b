// Memoised initialisation: one promise shared by every caller, forgotten when it fails (so
// the next caller retries) or, with a lifetime, once it is older than that.

import type { Clock } from '../ports';

export interface Memo<T> {
  (): Promise<T>;
  /** Forget the value now; the next call loads afresh. */
  reset(): void;
}

export function memoize<T>(load: () => Promise<T>, lifetime?: { ms: number; clock: Clock }): Memo<T> {
  let pending: Promise<T> | undefined;
  let loadedAt = 0;
  const memo = (() => {
    if (pending && lifetime && lifetime.clock.now() - loadedAt >= lifetime.ms) pending = undefined;
    if (!pending) {
      loadedAt = lifetime?.clock.now() ?? 0;
      const attempt = load();
      pending = attempt;
      attempt.catch(() => {
        if (pending === attempt) pending = undefined;
      });
    }
    return pending;
  }) as Memo<T>;
  memo.reset = () => {
    pending = undefined;
  };
  return memo;
}
