import { describe, expect, it } from 'vitest';
import { MAX_NAME_DEPTH, MAX_NAME_LENGTH, MAX_ROLES, parseNamePrefix, parseRoles, parseSecretName } from '../../lambda/core/names';

describe('secret names', () => {
  it.each(['db', 'app/db-password', 'a.b_c-D9/x', 'x/'.repeat(MAX_NAME_DEPTH - 1) + 'x', 'n'.repeat(MAX_NAME_LENGTH)])(
    'accepts %s',
    (name) => expect(parseSecretName(name)).toBe(name),
  );

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
  ])('refuses a name with %s', (_why, name) => {
    expect(() => parseSecretName(name)).toThrow(expect.objectContaining({ code: 'invalid_name' }));
  });
});

describe('list prefixes', () => {
  it('accepts any leading part of a name, including nothing', () => {
    for (const prefix of ['', 'app/', 'app/d']) expect(parseNamePrefix(prefix)).toBe(prefix);
  });
  it('refuses characters no name has', () => {
    expect(() => parseNamePrefix('a*')).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });
});

describe('roles', () => {
  it('accepts IAM role names and drops duplicates', () => {
    expect(parseRoles(['web', 'my+role=x,y.z@w_-', 'web'])).toEqual(['web', 'my+role=x,y.z@w_-']);
  });
  it.each([[[]], [['']], [['a b']], [['r'.repeat(65)]], [['arn:aws:iam::123456789012:role/web']], [Array(MAX_ROLES + 1).fill('r')]])(
    'refuses %j',
    (roles) => expect(() => parseRoles(roles)).toThrow(expect.objectContaining({ code: 'bad_request' })),
  );
});
