import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { DssssError } from '../../lambda/core/errors';
import { seal } from '../../lambda/core/sealed-box';
import { MAX_TOKEN_LENGTH, deriveTokenKey, issueToken, verifyToken, type TokenClaims } from '../../lambda/core/token';
import { expectHidden } from './fakes';

const sealKey = { id: 'k1', key: nacl.randomBytes(32) };
const tokenKey = deriveTokenKey(sealKey);
const now = 1_800_000_000;
const claims: TokenClaims = {
  account: '111122223333',
  role: 'webserver-role',
  roleId: 'AROAEXAMPLEWEBSERVER1',
  principal: 'i-0123456789abcdef0',
  method: 'ec2',
  iat: now,
  exp: now + 900,
  kid: 'k1',
};
const PREFIX = 'dssss.v2.';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DssssError);
    return (err as DssssError).code;
  }
  return 'accepted';
}

describe('reauthentication tokens', () => {
  it('round-trips its claims, under the v2 prefix', () => {
    const token = issueToken(claims, tokenKey);
    expect(token.startsWith(PREFIX)).toBe(true);
    expect(verifyToken(token, [tokenKey], now + 1)).toEqual(claims);
    const { roleId: _roleId, ...withoutId } = claims;
    expect(verifyToken(issueToken({ ...withoutId, method: 'iam' }, tokenKey), [tokenKey], now)).toEqual({ ...withoutId, method: 'iam' });
  });

  it('derives the same key from the same seal key (any instance accepts any other token)', () => {
    const elsewhere = deriveTokenKey({ id: 'k1', key: Uint8Array.from(sealKey.key) });
    expect(elsewhere.kid).toBe('k1');
    expect(verifyToken(issueToken(claims, tokenKey), [elsewhere], now)).toEqual(claims);
  });

  it('derives a token key distinct from the seal key itself, and per seal key', () => {
    expect(tokenKey.key).toHaveLength(32);
    expect(Buffer.from(tokenKey.key).equals(Buffer.from(sealKey.key))).toBe(false);
    const other = deriveTokenKey({ id: 'k2', key: nacl.randomBytes(32) });
    expect(Buffer.from(other.key).equals(Buffer.from(tokenKey.key))).toBe(false);
    // A token sealed directly under the seal key is not one of ours.
    const raw = { kid: 'k1', key: sealKey.key };
    expect(code(() => verifyToken(issueToken(claims, raw), [tokenKey], now))).toBe('invalid_credentials');
  });

  it('hides its claims: none in clear or base64(url), and it does not verify under another key', () => {
    const token = issueToken(claims, tokenKey);
    for (const plain of [JSON.stringify(claims), claims.role, claims.roleId!, claims.principal, claims.account, '"method":"ec2"', `"exp":${claims.exp}`]) {
      expectHidden(token, plain);
    }
    const body = Buffer.from(token.slice(PREFIX.length), 'base64url');
    expect(body.includes(Buffer.from(claims.principal))).toBe(false);
    expect(body.includes(Buffer.from(claims.role))).toBe(false);
    const other = deriveTokenKey({ id: 'k1', key: nacl.randomBytes(32) });
    expect(code(() => verifyToken(token, [other], now))).toBe('invalid_credentials');
    // Fresh nonce each time: the same claims never make the same token.
    expect(issueToken(claims, tokenKey)).not.toBe(token);
  });

  it('verifies a token of any key in the ring, newest first, so a rotation keeps old tokens valid', () => {
    const newKey = deriveTokenKey({ id: 'k2', key: nacl.randomBytes(32) });
    const ring = [newKey, tokenKey];
    const old = issueToken(claims, tokenKey);
    const fresh = issueToken({ ...claims, kid: 'k2' }, newKey);
    expect(verifyToken(old, ring, now)).toEqual(claims);
    expect(verifyToken(fresh, ring, now)).toEqual({ ...claims, kid: 'k2' });
    expect(verifyToken(old, [tokenKey, newKey], now)).toEqual(claims);
    // Its key retired from the ring: the old token is refused.
    expect(code(() => verifyToken(old, [newKey], now))).toBe('invalid_credentials');
    expect(code(() => verifyToken(old, [], now))).toBe('invalid_credentials');
  });

  it('refuses a token whose sealed kid is not the key that opened it', () => {
    const newKey = deriveTokenKey({ id: 'k2', key: nacl.randomBytes(32) });
    expect(code(() => verifyToken(issueToken({ ...claims, kid: 'k0' }, tokenKey), [tokenKey], now))).toBe('invalid_credentials');
    // Claims naming k2 but sealed under k1's key: refused even though k2 is in the ring.
    expect(code(() => verifyToken(issueToken({ ...claims, kid: 'k2' }, tokenKey), [newKey, tokenKey], now))).toBe('invalid_credentials');
  });

  it('refuses a token altered by one character, at every position', () => {
    const token = issueToken(claims, tokenKey);
    for (let i = 0; i < token.length; i++) {
      const swapped = token[i] === 'A' ? 'B' : 'A';
      expect(code(() => verifyToken(token.slice(0, i) + swapped + token.slice(i + 1), [tokenKey], now))).toBe('invalid_credentials');
    }
  });

  it('refuses a token with any byte of its box flipped', () => {
    const token = issueToken(claims, tokenKey);
    const bytes = Buffer.from(token.slice(PREFIX.length), 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      const flipped = Buffer.from(bytes);
      flipped[i] = flipped[i]! ^ 0x01;
      expect(code(() => verifyToken(PREFIX + flipped.toString('base64url'), [tokenKey], now))).toBe('invalid_credentials');
    }
  });

  it('refuses a token past its expiry', () => {
    const token = issueToken(claims, tokenKey);
    expect(code(() => verifyToken(token, [tokenKey], now + 899))).toBe('accepted');
    expect(code(() => verifyToken(token, [tokenKey], now + 900))).toBe('token_expired');
  });

  it('refuses a token issued in the future beyond a minute of clock skew', () => {
    expect(code(() => verifyToken(issueToken({ ...claims, iat: now + 60, exp: now + 900 }, tokenKey), [tokenKey], now))).toBe('accepted');
    expect(code(() => verifyToken(issueToken({ ...claims, iat: now + 61, exp: now + 900 }, tokenKey), [tokenKey], now))).toBe('invalid_credentials');
    expect(code(() => verifyToken(issueToken({ ...claims, iat: now + 3600, exp: now + 4000 }, tokenKey), [tokenKey], now))).toBe('invalid_credentials');
  });

  it('refuses sealed claims that are not whole claims', () => {
    const { account: _account, ...noAccount } = claims;
    const bad: unknown[] = [noAccount, { ...claims, method: 'password' }, { ...claims, exp: 'later' }, { ...claims, roleId: 7 }, [claims], 'claims'];
    for (const inner of bad) {
      const token = PREFIX + seal(new TextEncoder().encode(JSON.stringify(inner)), tokenKey.key, 'base64url');
      expect(code(() => verifyToken(token, [tokenKey], now))).toBe('invalid_credentials');
    }
    const notJson = PREFIX + seal(new Uint8Array([0xff, 0xfe]), tokenKey.key, 'base64url');
    expect(code(() => verifyToken(notJson, [tokenKey], now))).toBe('invalid_credentials');
  });

  it('refuses truncated, extended, empty, oversize, v1 and foreign tokens', () => {
    const token = issueToken(claims, tokenKey);
    const bad = [
      token.slice(0, -1),
      `${token}A`,
      '',
      PREFIX,
      'dssss.v1.',
      token.replace(PREFIX, 'dssss.v1.'),
      'Bearer',
      PREFIX + 'x'.repeat(MAX_TOKEN_LENGTH),
      ` ${token}`,
      token.replace(PREFIX, ''),
    ];
    for (const text of bad) expect(code(() => verifyToken(text, [tokenKey], now))).toBe('invalid_credentials');
  });
});
