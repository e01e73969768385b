import { describe, expect, it } from 'vitest';
import { MAX_NAME_DEPTH, MAX_NAME_LENGTH, MAX_ROLES, parseNamePrefix, parseRoles, parseSecretName } from '../../lambda/core/names';
import { displayRole, splitRef, toRoleRef } from '../../lambda/core/roles';

const HOME = '111122223333';
const OTHER = '444455556666';

describe('secret names', () => {
  it.each([
    'db',
    'app/db-password',
    'a.b_c-D9/x',
    'x/'.repeat(MAX_NAME_DEPTH - 1) + 'x',
    'n'.repeat(MAX_NAME_LENGTH),
    'versions/x',
    'restore/x',
    'app/versions/x',
    'app/versionsx',
    'app/Versions',
    'app/my-restore',
  ])('accepts %s', (name) => expect(parseSecretName(name)).toBe(name));

  it.each([
    ['empty', ''],
    ['leading slash', '/a'],
    ['trailing slash', 'a/'],
    ['empty segment', 'a//b'],
    ['dot segment', 'a/./b'],
    ['dot-dot segment', 'a/../b'],
    ['bare dot-dot', '..'],
    ['space', 'a b'],
    ['NUL', 'a\0b'],
    ['backslash', 'a\\b'],
    ['percent', 'a%2Fb'],
    ['unicode look-alike', 'аpp'],
    ['too long', 'n'.repeat(MAX_NAME_LENGTH + 1)],
    ['too deep', 'x/'.repeat(MAX_NAME_DEPTH) + 'x'],
    ['the versions route', 'app/versions'],
    ['the restore route', 'app/restore'],
    ['a bare versions', 'versions'],
    ['a bare restore', 'restore'],
    ['a deep versions', 'a/b/c/versions'],
  ])('refuses a name with %s', (_why, name) => {
    expect(() => parseSecretName(name)).toThrow(expect.objectContaining({ code: 'invalid_name' }));
  });

  it('says why a route name is refused', () => {
    expect(() => parseSecretName('app/versions')).toThrow(/versions.*restore/);
  });
});

describe('list prefixes', () => {
  it('accepts any leading part of a name, including nothing', () => {
    for (const prefix of ['', 'app/', 'app/d', 'app/versions']) expect(parseNamePrefix(prefix)).toBe(prefix);
  });
  it('refuses characters no name has, and overlong prefixes', () => {
    for (const bad of ['a*', 'a b', 'a\\b', 'n'.repeat(MAX_NAME_LENGTH + 1)]) {
      expect(() => parseNamePrefix(bad)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    }
  });
});

describe('roles', () => {
  it('reads bare IAM role names as roles of the home account and drops duplicates', () => {
    expect(parseRoles(['web', 'my+role=x,y.z@w_-', 'web'], HOME)).toEqual([`${HOME}:web`, `${HOME}:my+role=x,y.z@w_-`]);
  });

  it('keeps the account of account:name references and role ARNs', () => {
    expect(parseRoles([`${OTHER}:web`, `arn:aws:iam::${OTHER}:role/path/to/worker`, `arn:aws-cn:iam::${HOME}:role/cn`], HOME)).toEqual([
      `${OTHER}:web`,
      `${OTHER}:worker`,
      `${HOME}:cn`,
    ]);
  });

  it('treats the same role in different spellings as one, and the same name in two accounts as two', () => {
    expect(parseRoles(['web', `${HOME}:web`, `arn:aws:iam::${HOME}:role/web`], HOME)).toEqual([`${HOME}:web`]);
    expect(parseRoles(['web', `${OTHER}:web`], HOME)).toEqual([`${HOME}:web`, `${OTHER}:web`]);
    // The home account is whatever the deployment says.
    expect(parseRoles(['web'], OTHER)).toEqual([`${OTHER}:web`]);
  });

  it('accepts up to MAX_ROLES roles', () => {
    const roles = Array.from({ length: MAX_ROLES }, (_, i) => `r${i}`);
    expect(parseRoles(roles, HOME)).toHaveLength(MAX_ROLES);
  });

  it.each([
    [[]],
    [['']],
    [['a b']],
    [['r'.repeat(65)]],
    [['12345:web']],
    [[`${HOME}:`]],
    [[`${HOME}:a b`]],
    [[`arn:aws:iam::${HOME}:user/web`]],
    [[`arn:aws:iam::${HOME}:role/`]],
    [['arn:aws:iam::12345:role/web']],
    [[`arn:aws:sts::${HOME}:assumed-role/web/session`]],
    [Array(MAX_ROLES + 1).fill('r')],
  ])('refuses %j', (roles) => expect(() => parseRoles(roles, HOME)).toThrow(expect.objectContaining({ code: 'bad_request' })));
});

describe('role references', () => {
  it('split and display: bare for the home account, account:name otherwise', () => {
    expect(splitRef(`${OTHER}:web`)).toEqual({ account: OTHER, name: 'web' });
    expect(displayRole(`${HOME}:web`, HOME)).toBe('web');
    expect(displayRole(`${OTHER}:web`, HOME)).toBe(`${OTHER}:web`);
    expect(toRoleRef('not a role', HOME)).toBeUndefined();
  });
});
