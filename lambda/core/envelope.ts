// The secret envelope: each secret sealed under its own fresh key, that key sealed under
// the master seal key. The record names its format and seal key so the key can rotate.

import nacl from 'tweetnacl';
import { decodeStrict, encode } from './b64';
import { DssssError } from './errors';

export interface SealKey {
  /** Stable id of the seal key, stored in every record and token it protects. */
  readonly id: string;
  /** 32 bytes. */
  readonly key: Uint8Array;
}

export interface SecretPayload {
  readonly name: string;
  readonly roles: readonly string[];
  readonly value: string;
  readonly createdAt: string;
  readonly createdBy: string;
}

/** Parameter Store's Advanced tier holds 8 KiB; every backend keeps to it. */
export const MAX_RECORD_LENGTH = 8192;
const FORMAT = 1;

interface Record {
  v: number;
  kid: string;
  key: string;
  box: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function seal(message: Uint8Array, key: Uint8Array): string {
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  const box = nacl.secretbox(message, nonce, key);
  const out = new Uint8Array(nonce.length + box.length);
  out.set(nonce);
  out.set(box, nonce.length);
  return encode(out, 'base64');
}

function open(sealed: string, key: Uint8Array): Uint8Array | undefined {
  const bytes = decodeStrict(sealed, 'base64');
  if (!bytes || bytes.length < nacl.secretbox.nonceLength + nacl.secretbox.overheadLength) return undefined;
  const nonce = bytes.subarray(0, nacl.secretbox.nonceLength);
  return nacl.secretbox.open(bytes.subarray(nacl.secretbox.nonceLength), nonce, key) ?? undefined;
}

export function sealSecret(payload: SecretPayload, sealKey: SealKey): string {
  const secretKey = nacl.randomBytes(nacl.secretbox.keyLength);
  try {
    const record: Record = {
      v: FORMAT,
      kid: sealKey.id,
      key: seal(secretKey, sealKey.key),
      box: seal(encoder.encode(JSON.stringify(payload)), secretKey),
    };
    const text = JSON.stringify(record);
    if (text.length > MAX_RECORD_LENGTH) {
      throw new DssssError(
        'too_large',
        `the sealed secret would take ${text.length} bytes; the store holds at most ${MAX_RECORD_LENGTH} (secret, name and roles together)`,
      );
    }
    return text;
  } finally {
    secretKey.fill(0);
  }
}

const integrity = (why: string) => new DssssError('integrity', `stored record refused: ${why}`, 60);
const corrupt = () => integrity('it failed its integrity check');

/**
 * Opens a record read from the store under `expectedName`. A record that fails to open is
 * corrupt or tampered with: reported as a store failure, never as the client's fault.
 */
export function openSecret(text: string, expectedName: string, sealKey: SealKey): SecretPayload {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    throw corrupt();
  }
  if (!isRecord(record) || record.v !== FORMAT) throw corrupt();
  if (record.kid !== sealKey.id) {
    throw integrity('it is sealed with an unknown seal key');
  }
  const secretKey = open(record.key, sealKey.key);
  if (!secretKey || secretKey.length !== nacl.secretbox.keyLength) throw corrupt();
  const plain = open(record.box, secretKey);
  secretKey.fill(0);
  if (!plain) throw corrupt();
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(plain));
  } catch {
    throw corrupt();
  }
  if (!isPayload(payload)) throw corrupt();
  // A record copied under another name still opens; the name sealed inside says where it belongs.
  if (payload.name !== expectedName) {
    throw integrity('it belongs to another name');
  }
  return payload;
}

function isRecord(value: unknown): value is Record {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as { [k: string]: unknown };
  return (
    Object.keys(r).length === 4 &&
    typeof r.v === 'number' &&
    typeof r.kid === 'string' &&
    typeof r.key === 'string' &&
    typeof r.box === 'string'
  );
}

function isPayload(value: unknown): value is SecretPayload {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as { [k: string]: unknown };
  return (
    typeof p.name === 'string' &&
    typeof p.value === 'string' &&
    typeof p.createdAt === 'string' &&
    typeof p.createdBy === 'string' &&
    Array.isArray(p.roles) &&
    p.roles.every((r) => typeof r === 'string')
  );
}
