import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { MAX_RECORD_LENGTH, openSecret, sealSecret, type SealKey, type SecretPayload } from '../../lambda/core/envelope';
import { DssssError } from '../../lambda/core/errors';

const sealKey: SealKey = { id: 'k1', key: nacl.randomBytes(32) };
const payload: SecretPayload = {
  name: 'app/db-password',
  roles: ['web', 'worker'],
  value: 'hunter2 ☃',
  createdAt: '2026-11-24T00:00:00.000Z',
  createdBy: 'web i-0123456789abcdef0',
};

function refusal(fn: () => unknown): DssssError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DssssError);
    return err as DssssError;
  }
  throw new Error('expected a refusal');
}

describe('secret envelope', () => {
  it('round-trips a payload under its name', () => {
    expect(openSecret(sealSecret(payload, sealKey), payload.name, sealKey)).toEqual(payload);
  });

  it('stores no plaintext: neither the value nor the roles appear in the record', () => {
    const record = sealSecret(payload, sealKey);
    expect(record).not.toContain('hunter2');
    expect(record).not.toContain('worker');
  });

  it('records its format version and the seal key id', () => {
    const record = JSON.parse(sealSecret(payload, sealKey)) as { v: number; kid: string };
    expect(record.v).toBe(1);
    expect(record.kid).toBe('k1');
  });

  it('uses a fresh key and nonce per seal', () => {
    const a = JSON.parse(sealSecret(payload, sealKey)) as { key: string; box: string };
    const b = JSON.parse(sealSecret(payload, sealKey)) as { key: string; box: string };
    expect(a.key).not.toBe(b.key);
    expect(a.box).not.toBe(b.box);
  });

  it('refuses a record moved to another name', () => {
    const err = refusal(() => openSecret(sealSecret(payload, sealKey), 'app/other', sealKey));
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/another name/);
  });

  it('refuses a record sealed under another seal key', () => {
    const other: SealKey = { id: 'k1', key: nacl.randomBytes(32) };
    expect(refusal(() => openSecret(sealSecret(payload, other), payload.name, sealKey)).code).toBe('integrity');
  });

  it('refuses a record naming an unknown seal key id', () => {
    const record = sealSecret(payload, sealKey).replace('"kid":"k1"', '"kid":"k2"');
    expect(refusal(() => openSecret(record, payload.name, sealKey)).message).toMatch(/unknown seal key/);
  });

  it('refuses a record with any single character of its key or box changed', () => {
    const record = sealSecret(payload, sealKey);
    const parsed = JSON.parse(record) as { key: string; box: string };
    for (const field of ['key', 'box'] as const) {
      const text = parsed[field];
      for (let i = 0; i < text.length; i += 7) {
        const swapped = text[i] === 'A' ? 'B' : 'A';
        const tampered = JSON.stringify({ ...parsed, [field]: text.slice(0, i) + swapped + text.slice(i + 1) });
        expect(refusal(() => openSecret(tampered, payload.name, sealKey)).code).toBe('integrity');
      }
    }
  });

  it('refuses a record whose encrypted key was swapped with another record', () => {
    const a = JSON.parse(sealSecret(payload, sealKey)) as { key: string };
    const b = JSON.parse(sealSecret(payload, sealKey)) as { key: string };
    const swapped = JSON.stringify({ ...b, key: a.key });
    expect(refusal(() => openSecret(swapped, payload.name, sealKey)).code).toBe('integrity');
  });

  it('refuses malformed records without echoing them', () => {
    for (const bad of ['', 'not json', '{}', '[]', 'null', '{"v":2,"kid":"k1","key":"","box":""}']) {
      const err = refusal(() => openSecret(bad, payload.name, sealKey));
      expect(err.code).toBe('integrity');
      if (bad.length > 3) expect(err.message).not.toContain(bad);
    }
  });

  it('refuses to seal a record larger than the store can hold, naming the limit', () => {
    const err = refusal(() => sealSecret({ ...payload, value: 'x'.repeat(7000) }, sealKey));
    expect(err.code).toBe('too_large');
    expect(err.message).toContain(String(MAX_RECORD_LENGTH));
  });
});
