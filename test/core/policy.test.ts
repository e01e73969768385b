import { describe, expect, it } from 'vitest';
import { Policy, type Audience, type Caller, type WriterRule } from '../../lambda/core/policy';

const A = '111122223333'; // the deployment's own account
const B = '444455556666';
const ref = (role: string, account = A) => `${account}:${role}`;
const caller = (role: string, account = A, roleId?: string): Caller => ({ account, role, roleId, principal: 'i-0123456789abcdef0' });

const policy = (writerRules: WriterRule[] = []) => new Policy({ homeAccount: A, distinguishedRoles: [ref('dssssadmin')], writerRules });
const open = policy([{ prefix: '', roles: '*' }]);
const secret: Audience = { roles: [ref('web'), ref('worker')] };

type Op = 'read' | 'overwrite' | 'delete' | 'list';
function allowed(p: Policy, who: Caller, op: Op, audience: Audience = secret): boolean {
  try {
    if (op === 'read' && !p.mayRead(who, audience)) return false;
    if (op === 'overwrite') p.assertMayWrite(who, 'app/db', audience);
    if (op === 'delete') p.assertDistinguished(who, 'delete secrets');
    if (op === 'list') return p.mayList(who, audience);
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'forbidden' });
    return false;
  }
}

describe('authorization table', () => {
  // role, account, read, overwrite, delete, list
  const table: [string, string, boolean, boolean, boolean, boolean][] = [
    ['web', A, true, true, false, true],
    ['worker', A, true, true, false, true],
    ['other', A, false, false, false, false],
    ['dssssadmin', A, false, true, true, true], // admins overwrite and delete, but read only what names them
    ['Web', A, false, false, false, false], // role names are case-sensitive
    ['web', B, false, false, false, false], // same name, another account
    ['dssssadmin', B, false, false, false, false], // not the admin role of this deployment
  ];
  it.each(table)('%s in %s: read %s, overwrite %s, delete %s, list %s', (role, account, read, overwrite, del, list) => {
    const who = caller(role, account);
    expect(allowed(open, who, 'read')).toBe(read);
    expect(allowed(open, who, 'overwrite')).toBe(overwrite);
    expect(allowed(open, who, 'delete')).toBe(del);
    expect(allowed(open, who, 'list')).toBe(list);
  });

  it('cross-account: B:web does not read a secret for A:web, and A:web does not read one for B:web', () => {
    expect(open.mayRead(caller('web', B), { roles: [ref('web', A)] })).toBe(false);
    expect(open.mayRead(caller('web', A), { roles: [ref('web', B)] })).toBe(false);
    expect(open.mayRead(caller('web', B), { roles: [ref('web', B)] })).toBe(true);
    expect(open.mayOverwrite(caller('web', B), { roles: [ref('web', A)] })).toBe(false);
  });

  it('pinned role ids: a match reads, a mismatch or a missing id is refused', () => {
    const pinned: Audience = { roles: [ref('web'), ref('worker')], roleIds: { [ref('web')]: 'AROAWEB1' } };
    expect(open.mayRead(caller('web', A, 'AROAWEB1'), pinned)).toBe(true);
    // A role deleted and re-created under the same name has a new id: it is not the role the secret named.
    expect(open.mayRead(caller('web', A, 'AROAWEB2'), pinned)).toBe(false);
    expect(open.mayRead(caller('web', A), pinned)).toBe(false);
    expect(open.mayOverwrite(caller('web', A, 'AROAWEB2'), pinned)).toBe(false);
    expect(open.mayList(caller('web', A, 'AROAWEB2'), pinned)).toBe(false);
    // A role with no pinned id reads whatever id it has.
    expect(open.mayRead(caller('worker', A, 'AROAANY'), pinned)).toBe(true);
    expect(open.mayRead(caller('worker', A), pinned)).toBe(true);
    // The pin is per account:name: B's web with the same id is still not A's web.
    expect(open.mayRead(caller('web', B, 'AROAWEB1'), pinned)).toBe(false);
    // Admins overwrite regardless.
    expect(open.mayOverwrite(caller('dssssadmin', A, 'AROAADMIN'), pinned)).toBe(true);
  });

  it('refuses creating and overwriting with one message, and names the rule for admin operations', () => {
    const closed = policy();
    let create = '';
    let overwrite = '';
    try {
      closed.assertMayWrite(caller('web'), 'other/x', undefined);
    } catch (err) {
      create = (err as Error).message;
    }
    try {
      closed.assertMayWrite(caller('web'), 'other/x', { roles: [ref('worker')] });
    } catch (err) {
      overwrite = (err as Error).message;
    }
    expect(create).toMatch(/may not write secret other\/x/);
    expect(overwrite).toBe(create);
    expect(() => closed.assertMayWrite(caller('web'), 'web/x', undefined)).not.toThrow();
    expect(() => closed.assertDistinguished(caller('web'), 'purge secrets')).toThrow(/distinguished/);
    expect(() => closed.assertDistinguished(caller('dssssadmin'), 'purge secrets')).not.toThrow();
  });

  it('tells home-account roles from others', () => {
    expect(open.home(ref('web'))).toBe(true);
    expect(open.home(ref('web', B))).toBe(false);
    expect(open.isDistinguished(caller('dssssadmin'))).toBe(true);
    expect(open.isDistinguished(caller('dssssadmin', B))).toBe(false);
  });
});

describe('who may create a name', () => {
  it('distinguished roles create anywhere, whatever the rules say', () => {
    const p = policy([{ prefix: '', roles: [ref('deployer')] }, { prefix: 'prod/', roles: [ref('deployer')] }]);
    for (const name of ['prod/db', 'web/x', 'anything']) expect(p.mayCreate(caller('dssssadmin'), name)).toBe(true);
  });

  it('the longest matching prefix decides, in whatever order the rules were given', () => {
    const rules: WriterRule[] = [
      { prefix: '', roles: '*' },
      { prefix: 'prod/', roles: [ref('deployer')] },
      { prefix: 'prod/public/', roles: [ref('web'), ref('ci', B)] },
    ];
    for (const p of [policy(rules), policy([...rules].reverse())]) {
      expect(p.mayCreate(caller('web'), 'misc/x')).toBe(true);
      expect(p.mayCreate(caller('web'), 'prod/db')).toBe(false);
      expect(p.mayCreate(caller('deployer'), 'prod/db')).toBe(true);
      // prod/public/ is more specific than prod/: the deployer rule does not apply there.
      expect(p.mayCreate(caller('deployer'), 'prod/public/banner')).toBe(false);
      expect(p.mayCreate(caller('web'), 'prod/public/banner')).toBe(true);
      expect(p.mayCreate(caller('ci', B), 'prod/public/banner')).toBe(true);
      expect(p.mayCreate(caller('ci', A), 'prod/public/banner')).toBe(false);
      // 'prod' alone is not under 'prod/': the catch-all rule decides.
      expect(p.mayCreate(caller('web'), 'prod')).toBe(true);
    }
  });

  it("a '*' rule lets any authenticated role create under it, other accounts included", () => {
    const p = policy([{ prefix: 'shared/', roles: '*' }]);
    expect(p.mayCreate(caller('web'), 'shared/x')).toBe(true);
    expect(p.mayCreate(caller('web', B), 'shared/x')).toBe(true);
    expect(p.mayCreate(caller('web'), 'other/x')).toBe(false);
  });

  it('a matching rule decides even over the role\'s own namespace', () => {
    const p = policy([{ prefix: '', roles: [ref('deployer')] }]);
    expect(p.mayCreate(caller('web'), 'web/x')).toBe(false);
    expect(p.mayCreate(caller('deployer'), 'web/x')).toBe(true);
  });

  it('with no rule, a home-account role creates only under <role>/', () => {
    const p = policy([{ prefix: 'prod/', roles: [ref('deployer')] }]);
    expect(p.mayCreate(caller('web'), 'web/db')).toBe(true);
    expect(p.mayCreate(caller('web'), 'web/a/b/c')).toBe(true);
    expect(p.mayCreate(caller('web'), 'web')).toBe(false);
    expect(p.mayCreate(caller('web'), 'webx/db')).toBe(false);
    expect(p.mayCreate(caller('web'), 'worker/db')).toBe(false);
    expect(p.mayCreate(caller('Web'), 'web/db')).toBe(false);
    expect(policy().mayCreate(caller('web'), 'web/db')).toBe(true);
  });

  it("another account's role with no rule may not create, not even under its own name", () => {
    const p = policy([{ prefix: 'prod/', roles: [ref('web', B)] }]);
    expect(p.mayCreate(caller('web', B), 'web/db')).toBe(false);
    expect(p.mayCreate(caller('web', B), 'misc/db')).toBe(false);
    // Where a rule names it, it may.
    expect(p.mayCreate(caller('web', B), 'prod/db')).toBe(true);
    expect(() => p.assertMayWrite(caller('web', B), 'web/db', undefined)).toThrow(expect.objectContaining({ code: 'forbidden' }));
  });
});
