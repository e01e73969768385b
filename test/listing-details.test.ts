// `GET /v1/secrets?details=true` (what `dssss ls -l` shows): each listed name's version, time,
// writer and roles, for the secrets the caller may read; a name a distinguished role may
// only list carries its name alone; never a value.

import { beforeAll, describe, expect, it } from 'vitest';
import { localFixture, type Fixture } from './helpers';

let f: Fixture;

beforeAll(async () => {
  f = await localFixture();
});

describe('GET /v1/secrets?details=true', () => {
  it('gives each readable entry its version, updated time, writer and roles, and no value', async () => {
    const web = await f.login('web');
    await f.request('PUT', '/v1/secret/det/a', { token: web, body: { Secret: 'one', Roles: ['web'] } });
    await f.request('PUT', '/v1/secret/det/a', { token: web, body: { Secret: 'two', Roles: ['web', 'worker'] } });
    const response = await f.request('GET', '/v1/secrets?prefix=det/&details=true', { token: web });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toMatch(/"(one|two)"/);
    const page = JSON.parse(text) as { names: string[]; entries: { name: string; version: number; updated: string; by: { role: string; principal: string }; roles: string[] }[] };
    expect(page.names).toEqual(['det/a']);
    expect(page.entries).toEqual([{ name: 'det/a', version: 2, updated: expect.any(String), by: { role: 'web', principal: expect.stringMatching(/^i-/) }, roles: ['web', 'worker'] }]);
    expect(Date.parse(page.entries[0]!.updated)).not.toBeNaN();
  });

  it('gives a name a distinguished role may only list nothing but its name', async () => {
    const web = await f.login('web');
    await f.request('PUT', '/v1/secret/det/web-only', { token: web, body: { Secret: 'x', Roles: ['web'] } });
    const admin = await f.login('dssssadmin');
    const page = (await (await f.request('GET', '/v1/secrets?prefix=det/&details=true', { token: admin })).json()) as { names: string[]; entries: object[] };
    expect(page.names).toContain('det/web-only');
    expect(page.entries).toContainEqual({ name: 'det/web-only' });
  });

  it('leaves the listing as it was without details, and refuses a details that is not true or false', async () => {
    const web = await f.login('web');
    const plain = (await (await f.request('GET', '/v1/secrets?prefix=det/', { token: web })).json()) as Record<string, unknown>;
    expect(Object.keys(plain)).toEqual(['names']);
    expect((await f.request('GET', '/v1/secrets?prefix=det/&details=yes', { token: web })).status).toBe(400);
  });
});
