// The authorization matrix: every kind of caller against every operation, asserted from one
// table, with and without DSSSS_WRITER_ROLES. Each cell runs on its own secret and checks the
// state afterwards: a refusal changes nothing, a success does its job.

import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFixture, type Fixture } from '../helpers';

/**
 * The secret has two versions: v1 for roles ["web", "billing"], v2 (the latest) for ["web"], so
 * "read-old" also shows that narrowing the roles closes the history to the role dropped.
 * "a|b": a without DSSSS_WRITER_ROLES, b with DSSSS_WRITER_ROLES=deployer.
 * list: "shown" / "hidden" (200 either way), or a status.
 */
const MATRIX = `
  caller          read   create    overwrite  delete  list    read-old
  reader          200    200|403   200        403     shown   200
  other-role      403    200|403   403        403     hidden  403
  distinguished   403    200       200        204     shown   403
  writer          403    200       403        403     hidden  403
  none            401    401       401        401     401     401
`;

const ROLES: Record<string, string | undefined> = {
  reader: 'web',
  'other-role': 'billing', // among v1's roles, not the latest's
  distinguished: 'dssssadmin',
  writer: 'deployer', // named in DSSSS_WRITER_ROLES in the second variant
  none: undefined,
};

type Operation = 'read' | 'create' | 'overwrite' | 'delete' | 'list' | 'read-old';

function parseMatrix(variant: 0 | 1): { caller: string; operation: Operation; expected: string }[] {
  const [header, ...rows] = MATRIX.trim().split('\n').map((line) => line.trim().split(/\s+/));
  const operations = header!.slice(1) as Operation[];
  return rows.flatMap(([caller, ...cells]) =>
    cells.map((cell, i) => ({ caller: caller!, operation: operations[i]!, expected: cell.split('|')[variant] ?? cell })),
  );
}

const variants: { name: string; env: Record<string, string>; column: 0 | 1 }[] = [
  { name: 'DSSSS_WRITER_ROLES unset', env: {}, column: 0 },
  { name: 'DSSSS_WRITER_ROLES=deployer', env: { DSSSS_WRITER_ROLES: 'deployer' }, column: 1 },
];

for (const variant of variants) {
  describe(`who may do what, ${variant.name}`, () => {
    let f: Fixture;
    const tokens: Record<string, string> = {};
    let cell = 0;

    beforeAll(async () => {
      f = await localFixture(variant.env);
      for (const role of new Set([...Object.values(ROLES).filter((r) => r !== undefined), 'web'])) tokens[role!] = await f.login(role!);
    });
    afterAll(() => rm(f.dir, { recursive: true, force: true }));

    const call = (method: string, path: string, role: string | undefined, body?: unknown) =>
      f.request(method, path, { token: role === undefined ? undefined : tokens[role], body });
    const readAsReader = async (name: string) => {
      const response = await call('GET', `/v1/secret/${name}`, 'web');
      return { status: response.status, body: response.status === 200 ? ((await response.json()) as { secret: string; version: number }) : undefined };
    };
    const listAsAdmin = async (prefix: string) =>
      ((await (await call('GET', `/v1/secrets?prefix=${prefix}`, 'dssssadmin')).json()) as { names: string[] }).names;

    for (const { caller, operation, expected } of parseMatrix(variant.column)) it(`${caller}: ${operation} -> ${expected}`, async () => {
      const role = ROLES[caller];
      // Every cell gets its own secret, created by an admin (who may create in both variants).
      const prefix = `m${cell++}/`;
      const name = `${prefix}s`;
      for (const [value, roles] of [['v1', ['web', 'billing']], ['v2', ['web']]] as const) {
        expect((await call('PUT', `/v1/secret/${name}`, 'dssssadmin', { Secret: value, Roles: roles })).status).toBe(200);
      }

      switch (operation) {
        case 'read': {
          const response = await call('GET', `/v1/secret/${name}`, role);
          expect(response.status).toBe(Number(expected));
          if (response.status === 200) expect(await response.json()).toMatchObject({ secret: 'v2', version: 2 });
          else expect(await response.text()).not.toContain('v2');
          break;
        }
        case 'read-old': {
          const response = await call('GET', `/v1/secret/${name}?version=1`, role);
          expect(response.status).toBe(Number(expected));
          if (response.status === 200) expect(await response.json()).toMatchObject({ secret: 'v1', version: 1 });
          else expect(await response.text()).not.toContain('"v1"');
          break;
        }
        case 'create': {
          const created = `${prefix}new`;
          const response = await call('PUT', `/v1/secret/${created}`, role, { Secret: 'created', Roles: ['web'] });
          expect(response.status).toBe(Number(expected));
          expect(await listAsAdmin(prefix)).toEqual(response.status === 200 ? [created, name] : [name]);
          break;
        }
        case 'overwrite': {
          const response = await call('PUT', `/v1/secret/${name}`, role, { Secret: 'overwritten', Roles: ['web'] });
          expect(response.status).toBe(Number(expected));
          expect((await readAsReader(name)).body).toEqual(
            response.status === 200 ? { name, secret: 'overwritten', version: 3, roles: ['web'] } : { name, secret: 'v2', version: 2, roles: ['web'] },
          );
          break;
        }
        case 'delete': {
          const response = await call('DELETE', `/v1/secret/${name}`, role);
          expect(response.status).toBe(Number(expected));
          expect((await readAsReader(name)).status).toBe(response.status === 204 ? 404 : 200);
          break;
        }
        case 'list': {
          const response = await call('GET', `/v1/secrets?prefix=${prefix}`, role);
          if (expected === 'shown' || expected === 'hidden') {
            expect(response.status).toBe(200);
            expect(await response.json()).toEqual({ names: expected === 'shown' ? [name] : [] });
          } else {
            expect(response.status).toBe(Number(expected));
          }
          break;
        }
      }
    });

    it('covers every caller and every operation', () => {
      const cells = parseMatrix(variant.column);
      expect(new Set(cells.map((c) => c.caller))).toEqual(new Set(Object.keys(ROLES)));
      expect(new Set(cells.map((c) => c.operation))).toEqual(new Set(['read', 'create', 'overwrite', 'delete', 'list', 'read-old']));
      expect(cells).toHaveLength(Object.keys(ROLES).length * 6);
    });
  });
}
