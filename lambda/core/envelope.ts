// The secret envelope: each stored record sealed under its own fresh key, that key sealed
// under a seal key named by id. Inside, the record says which version of which name it is,
// where in the store it must stand, and (sealed under its key) the key of the record before
// it, so history opens from the latest record alone, whatever seal keys sealed older ones.

import { decodeStrict, encode } from './b64';
import { DssssError } from './errors';
import { KEY_BYTES, newKey, open, seal } from './sealed-box';
import type { RoleRef } from './roles';

export interface SealKey {
  /** Stable id of the seal key, stored in every record and token it protects. */
  readonly id: string;
  /** 32 bytes. */
  readonly key: Uint8Array;
}

export interface Actor {
  readonly account: string;
  readonly role: string;
  readonly principal: string;
}

/** put: a value; delete: a tombstone (soft delete); restore: an earlier value again. */
export type Operation = 'put' | 'delete' | 'restore';

export interface SecretPayload {
  readonly name: string;
  /** The version readers see (1, 2, ...). A re-sealed copy keeps the version it copies. */
  readonly version: number;
  /**
   * Where in the store this record must stand (the store's own version number). A record
   * found anywhere else lost a race, or was copied there: it is not part of the secret.
   */
  readonly seq: number;
  readonly op: Operation;
  /** Absent on a tombstone. */
  readonly value?: string | undefined;
  /** On a tombstone: the roles of the version it deleted. */
  readonly roles: readonly RoleRef[];
  readonly roleIds?: Readonly<Record<RoleRef, string>> | undefined;
  /** When and by whom this version was written (a re-sealed copy keeps both). */
  readonly at: string;
  readonly by: Actor;
  /** restore: the version whose value and roles it brings back. */
  readonly restoredFrom?: number | undefined;
  /** The record before this one in the store: its position and its per-record key. */
  readonly prev?: { readonly seq: number; readonly key: string } | undefined;
  /** Somewhere below, history holds format-1 records, which open only with their own (the first) seal key. */
  readonly legacy?: true | undefined;
}

/** An opened record: what it says, and the key that opened its box. */
export interface Opened {
  readonly payload: SecretPayload;
  readonly secretKey: Uint8Array;
  /** The seal key id the record names. */
  readonly kid: string;
  /** 1: written before versions and positions were sealed in (see openLegacy). */
  readonly format: 1 | 2;
}

/** Parameter Store's Advanced tier holds 8 KiB; every backend keeps to it. */
export const MAX_RECORD_LENGTH = 8192;
const FORMAT = 2;

interface StoredShape {
  v: number;
  kid: string;
  key: string;
  box: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

const integrity = (why: string) => new DssssError('integrity', `stored record refused: ${why}`, 60);
const corrupt = () => integrity('it failed its integrity check');

/** The record to store, and the fresh key that seals its box (the next record links to it). */
export function sealSecret(payload: SecretPayload, sealKey: SealKey): { record: string; secretKey: Uint8Array } {
  const secretKey = newKey();
  const record: StoredShape = {
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
  return { record: text, secretKey };
}

/** The seal key id a record names, without opening it; undefined if it is not a record. */
export function recordKid(text: string): string | undefined {
  const record = parseShape(text);
  return record?.kid;
}

/**
 * Opens a record read from the store under `expectedName`, with the seal key it names.
 * A record that fails to open is corrupt or tampered with: a store failure, never the
 * client's fault. `homeAccount` reads the bare role names of format-1 records.
 */
export function openSecret(text: string, expectedName: string, sealKey: SealKey, seq: number, homeAccount: string): Opened {
  const record = parseShape(text);
  if (!record) throw corrupt();
  if (record.kid !== sealKey.id) throw integrity('it is sealed with an unknown seal key');
  const secretKey = open(record.key, sealKey.key);
  if (!secretKey || secretKey.length !== KEY_BYTES) throw corrupt();
  return { ...openBox(record, expectedName, secretKey, seq, homeAccount), secretKey, kid: record.kid };
}

/** Opens a record with its per-record key, learnt from the record after it (walking history). */
export function openWithKey(text: string, expectedName: string, secretKey: Uint8Array, seq: number, homeAccount: string): Opened {
  const record = parseShape(text);
  if (!record) throw corrupt();
  return { ...openBox(record, expectedName, secretKey, seq, homeAccount), secretKey, kid: record.kid };
}

export function encodeKey(key: Uint8Array): string {
  return encode(key, 'base64');
}

export function decodeKey(text: string): Uint8Array {
  const key = decodeStrict(text, 'base64');
  if (!key || key.length !== KEY_BYTES) throw corrupt();
  return key;
}

/** Whether a record stands where it says it must: only such records are part of a secret. */
export function isCommitted(opened: Opened, seq: number): boolean {
  return opened.payload.seq === seq;
}

function openBox(record: StoredShape, expectedName: string, secretKey: Uint8Array, seq: number, homeAccount: string): Pick<Opened, 'payload' | 'format'> {
  const plain = open(record.box, secretKey);
  if (!plain) throw corrupt();
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(plain));
  } catch {
    throw corrupt();
  }
  const opened = record.v === FORMAT ? (isPayload(payload) ? payload : undefined) : openLegacy(payload, seq, homeAccount);
  if (!opened) throw corrupt();
  // A record copied under another name still opens; the name sealed inside says where it belongs.
  if (opened.name !== expectedName) throw integrity('it belongs to another name');
  return { payload: opened, format: record.v === FORMAT ? 2 : 1 };
}

/**
 * Format 1 (before this wave): {name, roles, value, createdAt, createdBy: "role principal"},
 * roles bare names of the home account, no position sealed in. Read as a put at the
 * position it was found; `dssss admin rewrap` re-seals such records as format 2.
 */
function openLegacy(value: unknown, seq: number, homeAccount: string): SecretPayload | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as { [k: string]: unknown };
  if (
    typeof p.name !== 'string' ||
    typeof p.value !== 'string' ||
    typeof p.createdAt !== 'string' ||
    typeof p.createdBy !== 'string' ||
    !Array.isArray(p.roles) ||
    !p.roles.every((r) => typeof r === 'string')
  ) {
    return undefined;
  }
  const [role = '', principal = ''] = p.createdBy.split(' ');
  return {
    name: p.name,
    version: seq,
    seq,
    op: 'put',
    value: p.value,
    roles: (p.roles as string[]).map((r) => `${homeAccount}:${r}`),
    at: p.createdAt,
    by: { account: homeAccount, role, principal },
  };
}

function parseShape(text: string): StoredShape | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as { [k: string]: unknown };
  const ok =
    Object.keys(r).length === 4 &&
    (r.v === 1 || r.v === FORMAT) &&
    typeof r.kid === 'string' &&
    typeof r.key === 'string' &&
    typeof r.box === 'string';
  return ok ? (r as unknown as StoredShape) : undefined;
}

function isPayload(value: unknown): value is SecretPayload {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as { [k: string]: unknown };
  const by = p.by as { [k: string]: unknown } | null | undefined;
  const prev = p.prev as { [k: string]: unknown } | null | undefined;
  return (
    typeof p.name === 'string' &&
    Number.isSafeInteger(p.version) &&
    Number.isSafeInteger(p.seq) &&
    (p.op === 'put' || p.op === 'delete' || p.op === 'restore') &&
    (p.value === undefined || typeof p.value === 'string') &&
    (p.op === 'delete' || typeof p.value === 'string') &&
    Array.isArray(p.roles) &&
    p.roles.every((r) => typeof r === 'string') &&
    (p.roleIds === undefined || (typeof p.roleIds === 'object' && p.roleIds !== null)) &&
    typeof p.at === 'string' &&
    typeof by === 'object' &&
    by !== null &&
    typeof by.account === 'string' &&
    typeof by.role === 'string' &&
    typeof by.principal === 'string' &&
    (p.restoredFrom === undefined || Number.isSafeInteger(p.restoredFrom)) &&
    (p.legacy === undefined || p.legacy === true) &&
    (prev === undefined || (typeof prev === 'object' && prev !== null && Number.isSafeInteger(prev.seq) && typeof prev.key === 'string'))
  );
}
