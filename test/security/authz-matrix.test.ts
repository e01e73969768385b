// The authorization matrix: every kind of caller against every operation, asserted from one
// table, under three writer-rule configurations. Each cell runs on its own secret and checks the
// state afterwards: a refusal changes nothing, a success does its job.

import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFixture, type Fixture } from '../helpers';

/**
 * The secret has two versions: v1 for roles ["web", "billing"], v2 (the latest) for ["web"], so
 * "read-old" also shows that narrowing the roles closes the history to the role dropped.
 * "a|b|c": a with no writer rules (a role creates under its own name only), b with
 * DSSSS_WRITER_ROLES=deployer, c with DSSSS_PREFIX_WRITERS="=*" (anyone creates anything).
 * A caller who may not read gets the 404 of a missing name. list: "shown" / "hidden" (200
 * either way), or a status. restore acts on the secret once an admin has deleted it.
 */
const MATRIX = `
  caller          read  create       overwrite  delete  list    read-old  history  restore  purge
  reader          200   403|403|200  200        403     shown   200       200      403      403
  other-role      404   403|403|200  403        403     hidden  404       404      403      403
  distinguished   404   200          200        204     shown   404       200      200      204
  writer          404   403|200|200  403        403     hidden  404       404      403      403
  foreign-web     404   403|403|200  403        403     hidden  404       404      403      403
  none            401   401          401        401     401     401       401      401      401
`;

const FOREIGN = '444455556666';
const ROLES: Record<string, { role: string; account?: string } | undefined> = {
  reader: { role: 'web' },
  'other-role': { role: 'billing' }, // among v1's roles, not the latest's
  distinguished: { role: 'dssssadmin' },
  writer: { role: 'deployer' }, // named in DSSSS_WRITER_ROLES in the second variant
  'foreign-web': { role: 'web', account: FOREIGN }, // the same role name in another account
  none: undefined,
};

type Operation = 'read' | 'create' | 'overwrite' | 'delete' | 'list' | 'read-old' | 'history' | 'restore' | 'purge';
const OPERATIONS: Operation[] = ['read', 'create', 'overwrite', 'delete', 'list', 'read-old', 'history', 'restore', 'purge'];

function parseMatrix(variant: 0 | 1 | 2): { caller: string; operation: Operation; expected: string }[] {
  const [header, ...rows] = MATRIX.trim().split('\n').map((line) => line.trim().split(/\s+/));
  const operations = header!.slice(1) as Operation[];
  return rows.flatMap(([caller, ...cells]) =>
    cells.map((cell, i) => ({ caller: caller!, operation: operations[i]!, expected: cell.split('|')[variant] ?? cell })),
  );
}

const variants: { name: string; env: Record<string, string>; column: 0 | 1 | 2 }[] = [
  { name: 'no writer rules', env: { DSSSS_WRITER_ROLES: '' }, column: 0 },
  { name: 'DSSSS_WRITER_ROLES=deployer', env: { DSSSS_WRITER_ROLES: 'deployer' }, column: 1 },
  { name: 'DSSSS_PREFIX_WRITERS="=*"', env: { DSSSS_WRITER_ROLES: '', DSSSS_PREFIX_WRITERS: '=*' }, column: 2 },
];

for (const variant of variants) {
  describe(`who may do what, ${variant.name}`, () => {
    let f: Fixture;
    const tokens: Record<string, string> = {};
    let cell = 0;

    beforeAll(async () => {
      f = await localFixture(variant.env);
      for (const [caller, who] of Object.entries(ROLES)) {
        if (!who) continue;
        const response = await f.request('GET', '/v1/auth', { headers: { Authentication: await f.identity(who.role, who.account) } });
        tokens[caller] = ((await response.json()) as { token: string }).token;
      }
    });
    afterAll(() => rm(f.dir, { recursive: true, force: true }));

    const call = (method: string, path: string, caller: string, body?: unknown) => f.request(method, path, { token: tokens[caller], body });
    const readAsReader = async (name: string) => {
      const response = await call('GET', `/v1/secret/${name}`, 'reader');
      return { status: response.status, body: response.status === 200 ? ((await response.json()) as { secret: string; version: number }) : undefined };
    };
    const listAsAdmin = async (prefix: string) =>
      ((await (await call('GET', `/v1/secrets?prefix=${prefix}`, 'distinguished')).json()) as { names: string[] }).names;

    for (const { caller, operation, expected } of parseMatrix(variant.column)) it(`${caller}: ${operation} -> ${expected}`, async () => {
      const role = caller;
      // Every cell gets its own secret, created by an admin (who may create in both variants).
      const prefix = `m${cell++}/`;
      const name = `${prefix}s`;
      for (const [value, roles] of [['v1', ['web', 'billing']], ['v2', ['web']]] as const) {
        expect((await call('PUT', `/v1/secret/${name}`, 'distinguished', { Secret: value, Roles: roles })).status).toBe(200);
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
        case 'history': {
          const response = await call('GET', `/v1/secret/${name}/versions`, role);
          expect(response.status).toBe(Number(expected));
          if (response.status === 200) expect(((await response.json()) as { versions: { version: number }[] }).versions.map((v) => v.version)).toEqual([2, 1]);
          break;
        }
        case 'restore': {
          expect((await call('DELETE', `/v1/secret/${name}`, 'distinguished')).status).toBe(204);
          const response = await call('POST', `/v1/secret/${name}/restore`, role);
          expect(response.status).toBe(Number(expected));
          expect(await readAsReader(name)).toEqual(
            response.status === 200 ? { status: 200, body: { name, secret: 'v2', version: 4, roles: ['web'] } } : { status: 404, body: undefined },
          );
          break;
        }
        case 'purge': {
          const response = await call('DELETE', `/v1/secret/${name}?purge=true`, role);
          expect(response.status).toBe(Number(expected));
          const history = await call('GET', `/v1/secret/${name}/versions`, 'distinguished');
          expect(history.status).toBe(response.status === 204 ? 404 : 200);
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
      expect(new Set(cells.map((c) => c.operation))).toEqual(new Set(OPERATIONS));
      expect(cells).toHaveLength(Object.keys(ROLES).length * OPERATIONS.length);
    });
  });
}
