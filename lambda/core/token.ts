// Reauthentication tokens: secretbox-sealed claims under a key derived from the seal key,
// so every instance of the function accepts every other's tokens without shared state.

import { hkdfSync } from 'node:crypto';
import nacl from 'tweetnacl';
import { decodeStrict, encode } from './b64';
import { DssssError } from './errors';
import type { SealKey } from './envelope';

export type AuthMethod = 'ec2' | 'iam';

export interface TokenClaims {
  readonly role: string;
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

const PREFIX = 'dssss.v1.';
const LABEL = 'dssss reauthentication token key v1';
/** Generous for any real token; stops oversize headers before any work. */
export const MAX_TOKEN_LENGTH = 2048;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function deriveTokenKey(sealKey: SealKey): TokenKey {
  const key = new Uint8Array(hkdfSync('sha256', sealKey.key, new Uint8Array(0), LABEL, nacl.secretbox.keyLength));
  return { kid: sealKey.id, key };
}

export function issueToken(claims: TokenClaims, tokenKey: TokenKey): string {
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  const box = nacl.secretbox(encoder.encode(JSON.stringify(claims)), nonce, tokenKey.key);
  const out = new Uint8Array(nonce.length + box.length);
  out.set(nonce);
  out.set(box, nonce.length);
  return PREFIX + encode(out, 'base64url');
}

const invalid = () => new DssssError('invalid_credentials', 'invalid reauthentication token');

/** `now` in seconds since the epoch. */
export function verifyToken(token: string, tokenKey: TokenKey, now: number): TokenClaims {
  if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(PREFIX)) throw invalid();
  const bytes = decodeStrict(token.slice(PREFIX.length), 'base64url');
  if (!bytes || bytes.length < nacl.secretbox.nonceLength + nacl.secretbox.overheadLength) throw invalid();
  const plain = nacl.secretbox.open(
    bytes.subarray(nacl.secretbox.nonceLength),
    bytes.subarray(0, nacl.secretbox.nonceLength),
    tokenKey.key,
  );
  if (!plain) throw invalid();
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
    typeof c.role === 'string' &&
    typeof c.principal === 'string' &&
    (c.method === 'ec2' || c.method === 'iam') &&
    Number.isSafeInteger(c.iat) &&
    Number.isSafeInteger(c.exp) &&
    typeof c.kid === 'string'
  );
}
