import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { DssssError } from '../../lambda/core/errors';
import { deriveTokenKey, issueToken, verifyToken, type TokenClaims } from '../../lambda/core/token';

const sealKey = { id: 'k1', key: nacl.randomBytes(32) };
const tokenKey = deriveTokenKey(sealKey);
const now = 1_800_000_000;
const claims: TokenClaims = { role: 'web', principal: 'i-0123456789abcdef0', method: 'ec2', iat: now, exp: now + 900, kid: 'k1' };

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
  it('round-trips its claims', () => {
    expect(verifyToken(issueToken(claims, tokenKey), tokenKey, now + 1)).toEqual(claims);
  });

  it('derives the same key from the same seal key (any instance accepts any other token)', () => {
    const elsewhere = deriveTokenKey({ id: 'k1', key: Uint8Array.from(sealKey.key) });
    expect(verifyToken(issueToken(claims, tokenKey), elsewhere, now)).toEqual(claims);
  });

  it('derives a token key distinct from the seal key itself', () => {
    expect(Buffer.from(tokenKey.key).equals(Buffer.from(sealKey.key))).toBe(false);
  });

  it('hides its claims', () => {
    expect(issueToken(claims, tokenKey)).not.toContain(Buffer.from('"role"').toString('base64url').slice(0, 6));
  });

  it('refuses a token altered by one byte, at every position', () => {
    const token = issueToken(claims, tokenKey);
    for (let i = 0; i < token.length; i++) {
      const swapped = token[i] === 'A' ? 'B' : 'A';
      expect(code(() => verifyToken(token.slice(0, i) + swapped + token.slice(i + 1), tokenKey, now))).toBe(
        'invalid_credentials',
      );
    }
  });

  it('refuses a token past its expiry', () => {
    const token = issueToken(claims, tokenKey);
    expect(code(() => verifyToken(token, tokenKey, now + 899))).toBe('accepted');
    expect(code(() => verifyToken(token, tokenKey, now + 900))).toBe('token_expired');
  });

  it('refuses a token made under another seal key', () => {
    const other = deriveTokenKey({ id: 'k1', key: nacl.randomBytes(32) });
    expect(code(() => verifyToken(issueToken(claims, other), tokenKey, now))).toBe('invalid_credentials');
  });

  it('refuses a token whose sealed kid is not the current seal key', () => {
    expect(code(() => verifyToken(issueToken({ ...claims, kid: 'k0' }, tokenKey), tokenKey, now))).toBe('invalid_credentials');
  });

  it('refuses a token issued in the future', () => {
    const token = issueToken({ ...claims, iat: now + 3600, exp: now + 4000 }, tokenKey);
    expect(code(() => verifyToken(token, tokenKey, now))).toBe('invalid_credentials');
  });

  it('refuses truncated, extended, empty, oversize and foreign tokens', () => {
    const token = issueToken(claims, tokenKey);
    for (const bad of [token.slice(0, -1), `${token}A`, '', 'dssss.v1.', 'Bearer', 'x'.repeat(5000), token.replace('v1', 'v2')]) {
      expect(code(() => verifyToken(bad, tokenKey, now))).toBe('invalid_credentials');
    }
  });
});
