import { describe, expect, it } from 'vitest';
import { KEY_BYTES, newKey, open, openBytes, seal, sealBytes } from '../../lambda/core/sealed-box';
import { expectHidden } from './fakes';

const key = newKey();
const message = new TextEncoder().encode('the quick brown fox jumps over the lazy dog');

describe('sealed box', () => {
  it('makes fresh 32-byte keys', () => {
    expect(KEY_BYTES).toBe(32);
    expect(key).toHaveLength(32);
    expect(Buffer.from(newKey()).equals(Buffer.from(newKey()))).toBe(false);
  });

  it('round-trips bytes and text in both encodings', () => {
    expect(openBytes(sealBytes(message, key), key)).toEqual(message);
    for (const encoding of ['base64', 'base64url'] as const) {
      const text = seal(message, key, encoding);
      expect(open(text, key, encoding)).toEqual(message);
    }
    expect(open(seal(message, key), key)).toEqual(message);
    expect(open(seal(new Uint8Array(0), key), key)).toEqual(new Uint8Array(0));
  });

  it('hides the message, and frames it as a 24-byte nonce, the box and a 16-byte authenticator', () => {
    const sealed = sealBytes(message, key);
    expect(sealed).toHaveLength(24 + 16 + message.length);
    expect(Buffer.from(sealed).includes(Buffer.from(message))).toBe(false);
    expectHidden(seal(message, key), 'the quick brown fox jumps over the lazy dog');
    expectHidden(seal(message, key, 'base64url'), 'the quick brown fox jumps over the lazy dog');
  });

  it('uses a fresh nonce each time', () => {
    const a = sealBytes(message, key);
    const b = sealBytes(message, key);
    expect(Buffer.from(a.subarray(0, 24)).equals(Buffer.from(b.subarray(0, 24)))).toBe(false);
    expect(seal(message, key)).not.toBe(seal(message, key));
  });

  it('opens with its key only', () => {
    expect(openBytes(sealBytes(message, key), newKey())).toBeUndefined();
    expect(open(seal(message, key), newKey())).toBeUndefined();
  });

  it('refuses any flipped byte, truncation, and frames too short to hold a box', () => {
    const sealed = sealBytes(message, key);
    for (let i = 0; i < sealed.length; i++) {
      const flipped = Uint8Array.from(sealed);
      flipped[i] = flipped[i]! ^ 0x01;
      expect(openBytes(flipped, key)).toBeUndefined();
    }
    expect(openBytes(sealed.subarray(0, sealed.length - 1), key)).toBeUndefined();
    expect(openBytes(new Uint8Array(39), key)).toBeUndefined();
    expect(openBytes(new Uint8Array(0), key)).toBeUndefined();
  });

  it('refuses text that is not the canonical encoding of a box', () => {
    const text = seal(message, key);
    expect(open(`${text}\n`, key)).toBeUndefined();
    expect(open(` ${text}`, key)).toBeUndefined();
    expect(open(text.replace(/=+$/, ''), key)).toBeUndefined();
    expect(open('', key)).toBeUndefined();
    expect(open('not base64!', key)).toBeUndefined();
    // Sealed as base64url, read as base64 (or the other way): refused when the texts differ.
    const url = seal(new Uint8Array(200).fill(0xfb), key, 'base64url');
    if (/[-_]/.test(url)) expect(open(url, key, 'base64')).toBeUndefined();
  });
});
