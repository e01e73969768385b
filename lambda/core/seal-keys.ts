// The master seal key, per container: read once, unwrapped once, then reused. On first
// use anywhere it is generated and stored with a conditional create, so concurrent cold
// starts converge on one key: the losers re-read and adopt the winner's.

import { randomBytes } from 'node:crypto';
import { DssssError } from './errors';
import type { SealKey } from './envelope';
import { deriveTokenKey, type TokenKey } from './token';
import type { KeyWrapper, SecretStore } from '../ports';

export const SEAL_KEY_META = 'seal-key';

export interface Keys {
  readonly seal: SealKey;
  readonly token: TokenKey;
}

interface StoredSealKey {
  v: 1;
  kid: string;
  wrapped: string;
}

export class SealKeyRing {
  private pending: Promise<Keys> | undefined;

  constructor(
    private readonly store: Pick<SecretStore, 'readMeta' | 'createMeta'>,
    private readonly wrapper: KeyWrapper,
  ) {}

  /** The keys for this container; a failed load is not cached, so the next request retries. */
  keys(): Promise<Keys> {
    if (!this.pending) {
      this.pending = this.load().catch((err: unknown) => {
        this.pending = undefined;
        throw err;
      });
    }
    return this.pending;
  }

  private async load(): Promise<Keys> {
    let stored = await this.store.readMeta(SEAL_KEY_META);
    if (stored === undefined) {
      const { plaintext, wrapped } = await this.wrapper.generateDataKey();
      const candidate: StoredSealKey = { v: 1, kid: randomBytes(8).toString('hex'), wrapped };
      if (await this.store.createMeta(SEAL_KEY_META, JSON.stringify(candidate))) {
        return withTokenKey({ id: candidate.kid, key: plaintext });
      }
      plaintext.fill(0);
      stored = await this.store.readMeta(SEAL_KEY_META);
      if (stored === undefined) throw new DssssError('unavailable', 'seal key vanished during creation');
    }
    const parsed = parse(stored);
    const key = await this.wrapper.unwrap(parsed.wrapped);
    if (key.length !== 32) throw new DssssError('integrity', 'the stored seal key has the wrong length', 60);
    return withTokenKey({ id: parsed.kid, key });
  }
}

function withTokenKey(seal: SealKey): Keys {
  return { seal, token: deriveTokenKey(seal) };
}

function parse(text: string): StoredSealKey {
  try {
    const value = JSON.parse(text) as Partial<StoredSealKey>;
    if (value.v === 1 && typeof value.kid === 'string' && typeof value.wrapped === 'string') {
      return value as StoredSealKey;
    }
  } catch {
    // fall through
  }
  throw new DssssError('integrity', 'the stored seal key record is malformed', 60);
}
