// In-memory stand-ins for the core's ports, for the unit tests under test/core: a
// bookkeeping store, a KMS-like key wrapper and a clock the test moves by hand.

import { DssssError } from '../../lambda/core/errors';
import { newKey, open, seal } from '../../lambda/core/sealed-box';
import type { Bookkeeping, Clock, InstanceStates, KeyWrapper, SecretStore } from '../../lambda/ports';

/** Lets other pending promises run, so concurrent callers really interleave (no timers). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FakeClock implements Clock {
  constructor(public time = 1_800_000_000_000) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

/** Bookkeeping values with a conditional create, each call yielding once so races are real. */
export class MemoryMeta implements Pick<SecretStore, 'readMeta' | 'createMeta' | 'deleteMeta'> {
  readonly values = new Map<string, string>();
  readonly calls = { read: 0, create: 0, created: 0, delete: 0 };

  async readMeta(keys: readonly string[]): Promise<Map<string, string>> {
    this.calls.read++;
    await tick();
    const out = new Map<string, string>();
    for (const key of keys) {
      const value = this.values.get(key);
      if (value !== undefined) out.set(key, value);
    }
    return out;
  }

  async createMeta(key: string, value: string): Promise<boolean> {
    this.calls.create++;
    await tick();
    if (this.values.has(key)) return false;
    this.values.set(key, value);
    this.calls.created++;
    return true;
  }

  async deleteMeta(key: string): Promise<void> {
    this.calls.delete++;
    await tick();
    this.values.delete(key);
  }
}

/** The bookkeeping table in miniature: conditional creates, and state reports ordered as the DynamoDB adapter orders them. */
export class MemoryBookkeeping implements Bookkeeping, InstanceStates {
  readonly values = new Map<string, string>();
  readonly states = new Map<string, { state: string; order: number }>();
  readonly calls = { read: 0, create: 0, state: 0, record: 0 };

  async read(key: string): Promise<string | undefined> {
    this.calls.read++;
    await tick();
    return this.values.get(key);
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    this.calls.create++;
    await tick();
    if (this.values.has(key)) return false;
    this.values.set(key, value);
    return true;
  }

  async state(instanceId: string): Promise<string | undefined> {
    this.calls.state++;
    await tick();
    return this.states.get(instanceId)?.state;
  }

  async record(instanceId: string, state: string, order: number): Promise<void> {
    this.calls.record++;
    await tick();
    const current = this.states.get(instanceId);
    if (current === undefined || current.order < order) this.states.set(instanceId, { state, order });
  }
}

/** KMS in miniature: data keys wrapped under a key-encryption key only this object holds. */
export class FakeWrapper implements KeyWrapper {
  readonly calls = { generate: 0, unwrap: 0 };
  constructor(private readonly kek: Uint8Array = newKey()) {}

  async generateDataKey(): Promise<{ plaintext: Uint8Array; wrapped: string }> {
    this.calls.generate++;
    await tick();
    const plaintext = newKey();
    return { plaintext, wrapped: seal(plaintext, this.kek) };
  }

  async unwrap(wrapped: string): Promise<Uint8Array> {
    this.calls.unwrap++;
    await tick();
    const plain = open(wrapped, this.kek);
    if (!plain) throw new DssssError('integrity', 'wrapped key does not open', 60);
    return plain;
  }
}

/**
 * Strings that would show up in a text holding `plain` as base64 or base64url at any byte
 * alignment: for each of the three alignments, the part of the encoding made of whole
 * 3-byte groups of `plain` alone. Any plaintext longer than ~10 bytes yields fragments.
 */
export function encodedForms(plain: string | Uint8Array): string[] {
  const bytes = typeof plain === 'string' ? Buffer.from(plain, 'utf8') : Buffer.from(plain);
  const forms: string[] = [];
  for (const encoding of ['base64', 'base64url'] as const) {
    forms.push(bytes.toString(encoding).replace(/=+$/, ''));
    for (let pad = 0; pad < 3; pad++) {
      const encoded = Buffer.concat([Buffer.alloc(pad), bytes]).toString(encoding);
      // Skip the first group (holds the padding bytes) and the last (may be partial).
      const fragment = encoded.slice(pad === 0 ? 0 : 4, -4);
      if (fragment.length >= 8) forms.push(fragment);
    }
  }
  forms.push(bytes.toString('hex'));
  return forms;
}

/** Fails the test if `text` holds `plain` in clear or in any of encodedForms(plain). */
export function expectHidden(text: string, plain: string | Uint8Array): void {
  if (typeof plain === 'string' && text.includes(plain)) throw new Error(`found in clear: ${plain}`);
  for (const form of encodedForms(plain)) {
    if (text.includes(form)) throw new Error(`found encoded: ${String(plain)} as ${form}`);
  }
}
