import { describe, expect, it } from 'vitest';
import { Policy } from '../../lambda/core/policy';

const caller = (role: string) => ({ role, principal: 'i-0123456789abcdef0' });
const open = new Policy({ distinguishedRoles: ['dssssadmin'] });
const writers = new Policy({ distinguishedRoles: ['dssssadmin'], writerRoles: ['deployer'] });
const secretRoles = ['web', 'worker'];

type Op = 'read' | 'create' | 'overwrite' | 'delete';
function allowed(policy: Policy, role: string, op: Op): boolean {
  try {
    if (op === 'read') policy.assertMayRead(caller(role), secretRoles);
    if (op === 'create') policy.assertMayCreate(caller(role));
    if (op === 'overwrite') policy.assertMayOverwrite(caller(role), secretRoles);
    if (op === 'delete') policy.assertMayDelete(caller(role));
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'forbidden' });
    return false;
  }
}

describe('authorization table', () => {
  // role, read, create (no writer list), create (writer list: deployer), overwrite, delete
  const table: [string, boolean, boolean, boolean, boolean, boolean][] = [
    ['web', true, true, false, true, false],
    ['other', false, true, false, false, false],
    ['dssssadmin', false, true, true, true, true],
    ['deployer', false, true, true, false, false],
    ['Web', false, true, false, false, false],
  ];
  it.each(table)('%s: read %s, create %s, create with writer list %s, overwrite %s, delete %s', (role, read, create, createW, overwrite, del) => {
    expect(allowed(open, role, 'read')).toBe(read);
    expect(allowed(open, role, 'create')).toBe(create);
    expect(allowed(writers, role, 'create')).toBe(createW);
    expect(allowed(open, role, 'overwrite')).toBe(overwrite);
    expect(allowed(open, role, 'delete')).toBe(del);
  });

  it('lists for readers and for distinguished roles only', () => {
    expect(open.mayList(caller('web'), secretRoles)).toBe(true);
    expect(open.mayList(caller('dssssadmin'), secretRoles)).toBe(true);
    expect(open.mayList(caller('other'), secretRoles)).toBe(false);
  });

  it('names the failed rule in a refusal', () => {
    expect(() => open.assertMayOverwrite(caller('other'), secretRoles)).toThrow(/existing secret's roles/);
    expect(() => open.assertMayDelete(caller('web'))).toThrow(/distinguished/);
  });
});
