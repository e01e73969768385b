import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import {
  MAX_RECORD_LENGTH,
  decodeKey,
  encodeKey,
  isCommitted,
  openSecret,
  openWithKey,
  recordKid,
  sealSecret,
  type SealKey,
  type SecretPayload,
} from '../../lambda/core/envelope';
import { DssssError } from '../../lambda/core/errors';
import { seal } from '../../lambda/core/sealed-box';
import { expectHidden } from './fakes';

const HOME = '111122223333';
const sealKey: SealKey = { id: 'k1', key: nacl.randomBytes(32) };
const payload: SecretPayload = {
  name: 'app/db-password',
  version: 3,
  seq: 4,
  op: 'put',
  value: 'hunter2 ☃ correct horse battery',
  roles: [`${HOME}:webserver-role`, `444455556666:batch-worker-role`],
  roleIds: { [`${HOME}:webserver-role`]: 'AROAEXAMPLEWEBSERVER1' },
  at: '2026-11-24T00:00:00.000Z',
  by: { account: HOME, role: 'deployer-role', principal: 'i-0123456789abcdef0' },
  prev: { seq: 3, key: encodeKey(nacl.randomBytes(32)) },
};

const sealed = (p: SecretPayload = payload, key: SealKey = sealKey) => sealSecret(p, key).record;
const openAt = (text: string, name = payload.name, key: SealKey = sealKey, seq = payload.seq) => openSecret(text, name, key, seq, HOME);

function refusal(fn: () => unknown): DssssError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DssssError);
    return err as DssssError;
  }
  throw new Error('expected a refusal');
}

interface Shape {
  v: number;
  kid: string;
  key: string;
  box: string;
}

/** A format-1 record, as written before this wave: bare role names, createdAt/createdBy, no position. */
function legacyRecord(name: string, key: SealKey = sealKey): string {
  const secretKey = nacl.randomBytes(32);
  const old = { name, roles: ['web', 'worker'], value: 'old hunter2', createdAt: '2025-01-02T03:04:05.000Z', createdBy: 'web i-0fedcba9876543210' };
  return JSON.stringify({ v: 1, kid: key.id, key: seal(secretKey, key.key), box: seal(new TextEncoder().encode(JSON.stringify(old)), secretKey) });
}

describe('secret envelope', () => {
  it('round-trips a payload under its name, naming its format and seal key', () => {
    const { record, secretKey } = sealSecret(payload, sealKey);
    const opened = openAt(record);
    expect(opened.payload).toEqual(payload);
    expect(opened.format).toBe(2);
    expect(opened.kid).toBe('k1');
    expect(Buffer.from(opened.secretKey).equals(Buffer.from(secretKey))).toBe(true);
    expect(JSON.parse(record)).toMatchObject({ v: 2, kid: 'k1' });
    expect(recordKid(record)).toBe('k1');
  });

  it('round-trips a tombstone and a restore', () => {
    const tombstone: SecretPayload = { ...payload, op: 'delete', value: undefined, prev: undefined };
    expect(openAt(sealed(tombstone)).payload).toMatchObject({ op: 'delete', roles: payload.roles });
    expect(openAt(sealed(tombstone)).payload.value).toBeUndefined();
    const restore: SecretPayload = { ...payload, op: 'restore', restoredFrom: 1, legacy: true };
    expect(openAt(sealed(restore)).payload).toEqual(restore);
  });

  it('stores no plaintext: not the value, the name, the roles, nor the payload JSON, in clear or base64(url)', () => {
    const { record, secretKey } = sealSecret(payload, sealKey);
    const secrets = [
      payload.value!,
      payload.name,
      'webserver-role',
      'batch-worker-role',
      'deployer-role',
      'AROAEXAMPLEWEBSERVER1',
      'i-0123456789abcdef0',
      payload.prev!.key,
      JSON.stringify(payload),
    ];
    for (const plain of secrets) expectHidden(record, plain);
    // Nor inside the decoded key and box fields.
    const parsed = JSON.parse(record) as Shape;
    const bytes = Buffer.concat([Buffer.from(parsed.key, 'base64'), Buffer.from(parsed.box, 'base64')]);
    for (const plain of secrets) expect(bytes.includes(Buffer.from(plain))).toBe(false);
    // The per-record key is itself sealed, not stored.
    expect(bytes.includes(Buffer.from(secretKey))).toBe(false);
    expectHidden(record, secretKey);
  });

  it('opens only with its seal key: the same id with another key fails', () => {
    const other: SealKey = { id: 'k1', key: nacl.randomBytes(32) };
    const err = refusal(() => openAt(sealed(), payload.name, other));
    expect(err.code).toBe('integrity');
    // And a record sealed under another key does not open with ours.
    expect(refusal(() => openAt(sealed(payload, other))).code).toBe('integrity');
  });

  it('uses a fresh per-record key and nonce per seal', () => {
    const a = sealSecret(payload, sealKey);
    const b = sealSecret(payload, sealKey);
    const pa = JSON.parse(a.record) as Shape;
    const pb = JSON.parse(b.record) as Shape;
    expect(pa.key).not.toBe(pb.key);
    expect(pa.box).not.toBe(pb.box);
    expect(Buffer.from(a.secretKey).equals(Buffer.from(b.secretKey))).toBe(false);
    expect(a.secretKey).toHaveLength(32);
  });

  it('opens with the per-record key it returned (walking history), and not with another', () => {
    const { record, secretKey } = sealSecret(payload, sealKey);
    const opened = openWithKey(record, payload.name, secretKey, payload.seq, HOME);
    expect(opened.payload).toEqual(payload);
    expect(opened.kid).toBe('k1');
    expect(refusal(() => openWithKey(record, payload.name, nacl.randomBytes(32), payload.seq, HOME)).code).toBe('integrity');
    expect(refusal(() => openWithKey(record, 'app/other', secretKey, payload.seq, HOME)).message).toMatch(/another name/);
  });

  it('is committed only at the position sealed inside it', () => {
    const record = sealed();
    expect(isCommitted(openAt(record, payload.name, sealKey, 4), 4)).toBe(true);
    // Found elsewhere (a lost race, or copied): it still opens, but is no part of the secret.
    const elsewhere = openAt(record, payload.name, sealKey, 5);
    expect(elsewhere.payload.seq).toBe(4);
    expect(isCommitted(elsewhere, 5)).toBe(false);
  });

  it('encodes per-record keys for the next record and refuses a malformed one', () => {
    const key = nacl.randomBytes(32);
    expect(Buffer.from(decodeKey(encodeKey(key))).equals(Buffer.from(key))).toBe(true);
    for (const bad of ['', 'AAAA', encodeKey(nacl.randomBytes(31)), encodeKey(key).slice(0, -2) + '!=']) {
      expect(refusal(() => decodeKey(bad)).code).toBe('integrity');
    }
  });

  it('refuses a record moved to another name', () => {
    const err = refusal(() => openAt(sealed(), 'app/other'));
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/another name/);
  });

  it('refuses a record naming an unknown seal key id', () => {
    const record = sealed().replace('"kid":"k1"', '"kid":"k2"');
    expect(recordKid(record)).toBe('k2');
    const err = refusal(() => openAt(record));
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/unknown seal key/);
  });

  it('refuses a record with any byte of its key or box flipped', () => {
    const parsed = JSON.parse(sealed()) as Shape;
    for (const field of ['key', 'box'] as const) {
      const bytes = Buffer.from(parsed[field], 'base64');
      for (let i = 0; i < bytes.length; i++) {
        const flipped = Buffer.from(bytes);
        flipped[i] = flipped[i]! ^ 0x01;
        const tampered = JSON.stringify({ ...parsed, [field]: flipped.toString('base64') });
        expect(refusal(() => openAt(tampered)).code).toBe('integrity');
      }
    }
  });

  it('refuses a record with any single character of its key or box text changed (no lenient base64)', () => {
    const parsed = JSON.parse(sealed()) as Shape;
    for (const field of ['key', 'box'] as const) {
      const text = parsed[field];
      for (let i = 0; i < text.length; i += 3) {
        const swapped = text[i] === 'A' ? 'B' : 'A';
        const tampered = JSON.stringify({ ...parsed, [field]: text.slice(0, i) + swapped + text.slice(i + 1) });
        expect(refusal(() => openAt(tampered)).code).toBe('integrity');
      }
      // Junk that a lenient decoder would skip.
      expect(refusal(() => openAt(JSON.stringify({ ...parsed, [field]: `${text}\n` }))).code).toBe('integrity');
    }
  });

  it('refuses a record whose sealed key was swapped with another record', () => {
    const a = JSON.parse(sealed()) as Shape;
    const b = JSON.parse(sealed()) as Shape;
    expect(refusal(() => openAt(JSON.stringify({ ...b, key: a.key }))).code).toBe('integrity');
  });

  it('refuses a format-2 record relabelled as format 1, and a format-1 record relabelled as 2', () => {
    const v2 = JSON.parse(sealed()) as Shape;
    expect(refusal(() => openAt(JSON.stringify({ ...v2, v: 1 }))).code).toBe('integrity');
    const v1 = JSON.parse(legacyRecord(payload.name)) as Shape;
    expect(refusal(() => openAt(JSON.stringify({ ...v1, v: 2 }))).code).toBe('integrity');
  });

  it('refuses a sealed box that is not a whole payload', () => {
    const secretKey = nacl.randomBytes(32);
    for (const inner of [{ ...payload, op: 'update' }, { ...payload, version: '3' }, { ...payload, by: 'web i-1' }, { ...payload, value: undefined }, 'text']) {
      const record = JSON.stringify({
        v: 2,
        kid: 'k1',
        key: seal(secretKey, sealKey.key),
        box: seal(new TextEncoder().encode(JSON.stringify(inner)), secretKey),
      });
      expect(refusal(() => openAt(record)).code).toBe('integrity');
    }
  });

  it('refuses malformed records without echoing them', () => {
    const good = JSON.parse(sealed()) as Shape;
    const bad = [
      '',
      'not json',
      '{}',
      '[]',
      'null',
      '{"v":2,"kid":"k1","key":"","box":""}',
      JSON.stringify({ ...good, v: 3 }),
      JSON.stringify({ ...good, extra: 1 }),
    ];
    for (const text of bad) {
      const err = refusal(() => openAt(text));
      expect(err.code).toBe('integrity');
      if (text.length > 3) expect(err.message).not.toContain(text);
    }
    // Only the record shape names a seal key.
    expect(bad.map(recordKid)).toEqual([undefined, undefined, undefined, undefined, undefined, 'k1', undefined, undefined]);
  });

  it('refuses to seal a record larger than the store can hold, naming the limit', () => {
    const err = refusal(() => sealSecret({ ...payload, value: 'x'.repeat(7000) }, sealKey));
    expect(err.code).toBe('too_large');
    expect(err.message).toContain(String(MAX_RECORD_LENGTH));
    expect(err.message).not.toContain('xxxx');
  });
});

describe('format-1 (legacy) records', () => {
  it('open as a committed put at the position found, roles in the home account', () => {
    const record = legacyRecord(payload.name);
    const opened = openAt(record, payload.name, sealKey, 7);
    expect(opened.format).toBe(1);
    expect(opened.kid).toBe('k1');
    expect(opened.payload).toEqual({
      name: payload.name,
      version: 7,
      seq: 7,
      op: 'put',
      value: 'old hunter2',
      roles: [`${HOME}:web`, `${HOME}:worker`],
      at: '2025-01-02T03:04:05.000Z',
      by: { account: HOME, role: 'web', principal: 'i-0fedcba9876543210' },
    });
    expect(isCommitted(opened, 7)).toBe(true);
    expect(openAt(record, payload.name, sealKey, 1).payload.version).toBe(1);
  });

  it('open with their per-record key too (the next record links to it)', () => {
    const record = legacyRecord(payload.name);
    const { secretKey } = openAt(record, payload.name, sealKey, 2);
    expect(openWithKey(record, payload.name, secretKey, 2, HOME).payload).toMatchObject({ op: 'put', version: 2, value: 'old hunter2' });
  });

  it('are refused under another name, with another seal key, or tampered with', () => {
    const record = legacyRecord(payload.name);
    expect(refusal(() => openAt(record, 'app/other', sealKey, 1)).message).toMatch(/another name/);
    expect(refusal(() => openAt(record, payload.name, { id: 'k1', key: nacl.randomBytes(32) }, 1)).code).toBe('integrity');
    const parsed = JSON.parse(record) as Shape;
    const box = Buffer.from(parsed.box, 'base64');
    box[box.length - 1] = box[box.length - 1]! ^ 0x80;
    expect(refusal(() => openAt(JSON.stringify({ ...parsed, box: box.toString('base64') }), payload.name, sealKey, 1)).code).toBe('integrity');
  });
});
