// Reauthentication tokens: secretbox-sealed claims under a key derived from the seal key,
// so every instance of the function accepts every other's tokens without shared state.

import { hkdfSync } from 'node:crypto';
import { DssssError } from './errors';
import type { SealKey } from './envelope';
import { KEY_BYTES, open, seal } from './sealed-box';

export type AuthMethod = 'ec2' | 'iam';

export interface TokenClaims {
  /** The role's account: a role is a name in an account, not a name. */
  readonly account: string;
  readonly role: string;
  /** The role's unique id, where AWS gave one. */
  readonly roleId?: string | undefined;
  /** Who logged in: an instance id, or an assumed-role session ARN. */
  readonly principal: string;
  readonly method: AuthMethod;
  /** Seconds since the epoch. */
  readonly iat: number;
  readonly exp: number;
  /** The seal key the token key was derived from. */
  readonly kid: string;
}

export interface TokenKey {
  readonly kid: string;
  readonly key: Uint8Array;
}

// v2: claims name the role's account and id; v1 tokens (role names alone) are refused.
const PREFIX = 'dssss.v2.';
const LABEL = 'dssss reauthentication token key v1';
/** A stolen token is good until it expires: no configuration makes that longer than this. */
export const MAX_TOKEN_TTL_SECONDS = 60 * 60;
/** Generous for any real token; stops oversize headers before any work. */
export const MAX_TOKEN_LENGTH = 2048;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function deriveTokenKey(sealKey: SealKey): TokenKey {
  const key = new Uint8Array(hkdfSync('sha256', sealKey.key, new Uint8Array(0), LABEL, KEY_BYTES));
  return { kid: sealKey.id, key };
}

export function issueToken(claims: TokenClaims, tokenKey: TokenKey): string {
  return PREFIX + seal(encoder.encode(JSON.stringify(claims)), tokenKey.key, 'base64url');
}

const invalid = () => new DssssError('invalid_credentials', 'invalid reauthentication token');

/**
 * `keys`: the token keys of every seal key in the ring, newest first, so tokens issued
 * before a rotation stay valid until they expire. `now` in seconds since the epoch.
 */
export function verifyToken(token: string, keys: readonly TokenKey[], now: number): TokenClaims {
  if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(PREFIX)) throw invalid();
  let plain: Uint8Array | undefined;
  let tokenKey: TokenKey | undefined;
  for (const key of keys) {
    plain = open(token.slice(PREFIX.length), key.key, 'base64url');
    if (plain) {
      tokenKey = key;
      break;
    }
  }
  if (!plain || !tokenKey) throw invalid();
  let claims: unknown;
  try {
    claims = JSON.parse(decoder.decode(plain));
  } catch {
    throw invalid();
  }
  if (!isClaims(claims) || claims.kid !== tokenKey.kid) throw invalid();
  if (now >= claims.exp) throw new DssssError('token_expired', 'reauthentication token expired: log in again');
  // Issued in the future beyond clock skew: not one of ours.
  if (claims.iat > now + 60) throw invalid();
  return claims;
}

function isClaims(value: unknown): value is TokenClaims {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as { [k: string]: unknown };
  return (
    typeof c.account === 'string' &&
    typeof c.role === 'string' &&
    (c.roleId === undefined || typeof c.roleId === 'string') &&
    typeof c.principal === 'string' &&
    (c.method === 'ec2' || c.method === 'iam') &&
    Number.isSafeInteger(c.iat) &&
    Number.isSafeInteger(c.exp) &&
    typeof c.kid === 'string'
  );
}
