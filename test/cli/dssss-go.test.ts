// Opening the original Go dssss's records (the format of ../shared/reference/dssss-go.md),
// made here with tweetnacl directly, as the original makes them.

import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { openGoRecord } from '../../cli/dssss-go';

const goSeal = (key: Uint8Array, message: Uint8Array) => {
  const nonce = nacl.randomBytes(24);
  return Buffer.concat([nonce, nacl.secretbox(message, nonce, key)]).toString('base64');
};

function record(master: Uint8Array, value: Uint8Array, roles: string[] | null, key = nacl.randomBytes(32)): string {
  const content = JSON.stringify({ RoleList: roles, SecretCiphertext: goSeal(key, value) });
  return JSON.stringify({ Bytes: goSeal(key, Buffer.from(content)), KeyCiphertext: goSeal(master, key) }, null, '  ');
}

describe('openGoRecord', () => {
  const master = nacl.randomBytes(32);

  it('opens the value and the roles; RoleList null stays null', () => {
    expect(openGoRecord(record(master, Buffer.from('s3cr3t ✓'), ['web', 'db']), master)).toEqual({ value: 's3cr3t ✓', roles: ['web', 'db'] });
    expect(openGoRecord(record(master, Buffer.from('x'), null), master)).toEqual({ value: 'x', roles: null });
  });

  it('refuses, with a reason and never the value, a record of another master key, an altered one, and one that is not text', () => {
    expect(() => openGoRecord(record(nacl.randomBytes(32), Buffer.from('canary'), ['web']), master)).toThrow('its key does not open with the master key');
    const parsed = JSON.parse(record(master, Buffer.from('canary'), ['web'])) as { Bytes: string; KeyCiphertext: string };
    const bytes = Buffer.from(parsed.Bytes, 'base64');
    bytes[bytes.length - 1]! ^= 1;
    expect(() => openGoRecord(JSON.stringify({ ...parsed, Bytes: bytes.toString('base64') }), master)).toThrow('its content does not open with its key');
    expect(() => openGoRecord(record(master, new Uint8Array([0xff, 0xfe]), ['web']), master)).toThrow(/not UTF-8/);
    expect(() => openGoRecord('["not a record"]', master)).toThrow(/not the original's JSON record/);
    try {
      openGoRecord(record(nacl.randomBytes(32), Buffer.from('canary'), ['web']), master);
    } catch (err) {
      expect((err as Error).message).not.toContain('canary');
    }
  });
});
