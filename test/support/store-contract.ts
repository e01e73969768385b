// What every SecretStore must do, run against each backend: the file store in `npm test`,
// Parameter Store on moto_server in `npm run test:aws`.

import { expect, it } from 'vitest';
import type { SecretStore } from '../../lambda/ports';

export function storeContract(makeStore: () => Promise<SecretStore>): void {
  it('appends at positions 1, 2, ... and reads the latest and the whole history', async () => {
    const store = await makeStore();
    expect(await store.append('a/b', 'r1', 0)).toBe(1);
    expect(await store.append('a/b', 'r2', 1)).toBe(2);
    expect(await store.latest('a/b')).toEqual({ record: 'r2', seq: 2 });
    expect(await store.history('a/b')).toEqual([
      { record: 'r1', seq: 1 },
      { record: 'r2', seq: 2 },
    ]);
    expect(await store.latest('a/c')).toBeUndefined();
    expect(await store.history('a/c')).toEqual([]);
  });

  it('lets exactly one of concurrent first appends count', async () => {
    const store = await makeStore();
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => store.append('race', `r${i}`, 0)));
    expect(results.filter((r) => r !== undefined)).toEqual([1]);
    const winner = results.findIndex((r) => r === 1);
    expect((await store.history('race'))[0]).toEqual({ record: `r${winner}`, seq: 1 });
  });

  it('does not count an append made on a stale position (compare-and-set)', async () => {
    const store = await makeStore();
    await store.append('cas', 'r1', 0);
    await store.append('cas', 'r2', 1);
    expect(await store.append('cas', 'stale', 1)).toBeUndefined();
    // Whatever the backend did with it, position 2 still holds r2.
    expect((await store.history('cas')).find((r) => r.seq === 2)?.record).toBe('r2');
  });

  it('purges every record; a later append starts again at 1', async () => {
    const store = await makeStore();
    await store.append('d', 'r1', 0);
    expect(await store.purge('d')).toBe(true);
    expect(await store.latest('d')).toBeUndefined();
    expect(await store.purge('d')).toBe(false);
    expect(await store.append('d', 'again', 0)).toBe(1);
  });

  // Order is the store's: Parameter Store's GetParametersByPath promises none (moto agrees).
  it('lists the latest record of each name by prefix, each once, a page at a time', async () => {
    const store = await makeStore();
    for (const name of ['app/c', 'app/a', 'other/x', 'app/b', 'apple']) await store.append(name, `r-${name}`, 0);
    await store.append('app/a', 'r-app/a-2', 1);
    const seen: { name: string; record: string; seq: number }[] = [];
    let next: string | undefined;
    do {
      const page = await store.list('app/', 2, next);
      expect(page.entries.length).toBeLessThanOrEqual(2);
      seen.push(...page.entries);
      next = page.next;
    } while (next !== undefined);
    expect(seen.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'app/a', record: 'r-app/a-2', seq: 2 },
      { name: 'app/b', record: 'r-app/b', seq: 1 },
      { name: 'app/c', record: 'r-app/c', seq: 1 },
    ]);
  });

  it('creates bookkeeping values once, reads them in batches, deletes them', async () => {
    const store = await makeStore();
    expect(await store.createMeta('seal-key', 'one')).toBe(true);
    expect(await store.createMeta('seal-key', 'two')).toBe(false);
    await store.createMeta('other', 'x');
    const keys = ['seal-key', 'absent', 'other', ...Array.from({ length: 12 }, (_, i) => `k${i}`)];
    expect(await store.readMeta(keys)).toEqual(new Map([['seal-key', 'one'], ['other', 'x']]));
    await store.deleteMeta('other');
    await store.deleteMeta('never-there');
    expect(await store.readMeta(['other'])).toEqual(new Map());
  });
}
