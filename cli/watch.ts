// What following changes needs: an abortable wait, and whether two reads differ.

import type { Secret } from './client';

/** Waits `ms`, or less if `signal` aborts first (then it resolves, it does not throw). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The same names, each with the same version, value and roles. */
export function sameSecrets(a: ReadonlyMap<string, Secret>, b: ReadonlyMap<string, Secret>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (y === undefined || !sameSecret(x, y)) return false;
  }
  return true;
}

export function sameSecret(x: Secret, y: Secret): boolean {
  return x.version === y.version && x.value === y.value && x.roles.length === y.roles.length && x.roles.every((r, i) => r === y.roles[i]);
}
