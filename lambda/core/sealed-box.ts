// The one secretbox framing every sealed thing here uses (records, their per-secret keys,
// tokens, the local stand-in for KMS): nonce (24 random bytes) followed by the box.

import nacl from 'tweetnacl';
import { decodeStrict, encode } from './b64';

export const KEY_BYTES = nacl.secretbox.keyLength;

/** A fresh random key, for a secret or a seal key. */
export function newKey(): Uint8Array {
  return nacl.randomBytes(KEY_BYTES);
}

/** nonce ‖ secretbox(message), as bytes. */
export function sealBytes(message: Uint8Array, key: Uint8Array): Uint8Array {
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  const box = nacl.secretbox(message, nonce, key);
  const out = new Uint8Array(nonce.length + box.length);
  out.set(nonce);
  out.set(box, nonce.length);
  return out;
}

/** The message, or undefined when the framing or the authenticator is wrong. */
export function openBytes(sealed: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  if (sealed.length < nacl.secretbox.nonceLength + nacl.secretbox.overheadLength) return undefined;
  const nonce = sealed.subarray(0, nacl.secretbox.nonceLength);
  return nacl.secretbox.open(sealed.subarray(nacl.secretbox.nonceLength), nonce, key) ?? undefined;
}

/** sealBytes as text, in base64 or base64url. */
export function seal(message: Uint8Array, key: Uint8Array, encoding: 'base64' | 'base64url' = 'base64'): string {
  return encode(sealBytes(message, key), encoding);
}

/** The inverse of seal; undefined for anything that is not canonical text of a valid box. */
export function open(text: string, key: Uint8Array, encoding: 'base64' | 'base64url' = 'base64'): Uint8Array | undefined {
  const bytes = decodeStrict(text, encoding);
  return bytes === undefined ? undefined : openBytes(bytes, key);
}
