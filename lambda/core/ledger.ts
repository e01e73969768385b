// A secret's records in the store, read and written as one ledger: the head (the newest
// record that stands where it says it must), its history (walked back through the keys each
// record holds of the one before), and compare-and-set appends that land only on top of the
// head they were decided on.

import { encodeKey, decodeKey, isCommitted, openSecret, openWithKey, sealSecret, recordKid, type Opened, type SecretPayload } from './envelope';
import { DssssError } from './errors';
import type { SealKeyRing } from './seal-keys';
import type { ReadOptions, SecretStore, StoredRecord } from '../ports';

export interface Head extends Opened {
  /** Its position in the store. */
  readonly seq: number;
}

export interface Resolved {
  readonly name: string;
  /** The newest position in the store, whatever stands there: the next append expects it. */
  readonly storeSeq: number;
  /** The newest committed record; undefined when the name has none. */
  readonly head?: Head | undefined;
}

/** What a new record says; the ledger fills in its position and its link to the head. */
export type NewRecord = Omit<SecretPayload, 'seq' | 'prev' | 'name' | 'legacy'>;

/** Thrown when an append lost its race: decide again on the new head. */
export class LostRace extends Error {
  override name = 'LostRace';
}

export class Ledger {
  constructor(
    private readonly store: SecretStore,
    private readonly ring: SealKeyRing,
    private readonly homeAccount: string,
  ) {}

  /** The head of `name`. One store read when the newest record is committed (always, but after a lost race). */
  async resolve(name: string, options?: ReadOptions): Promise<Resolved> {
    const latest = await this.store.latest(name, options);
    if (!latest) return { name, storeSeq: 0 };
    const opened = await this.open(name, latest);
    if (isCommitted(opened, latest.seq)) return { name, storeSeq: latest.seq, head: { ...opened, seq: latest.seq } };
    return this.resolveFrom(name, await this.store.history(name));
  }

  /** The head among records already read (a listing page gives the newest of each name). */
  async resolveListed(name: string, latest: StoredRecord): Promise<Resolved> {
    const opened = await this.open(name, latest);
    if (isCommitted(opened, latest.seq)) return { name, storeSeq: latest.seq, head: { ...opened, seq: latest.seq } };
    return this.resolveFrom(name, await this.store.history(name));
  }

  /**
   * Every committed record from the head back, newest first, each opened with the key its
   * successor holds (so no old seal key is needed), until history runs out.
   */
  async walk(resolved: Resolved): Promise<Head[]> {
    const { head, name } = resolved;
    if (!head) return [];
    const records = await this.store.history(name);
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    const out: Head[] = [head];
    let current: Head = head;
    for (;;) {
      const prev = current.payload.prev;
      let next: Head | undefined;
      if (prev) {
        const record = bySeq.get(prev.seq);
        if (!record) break; // older than the store keeps
        const opened = openWithKey(record.record, name, decodeKey(prev.key), record.seq, this.homeAccount);
        if (!isCommitted(opened, record.seq)) throw new DssssError('integrity', `stored record refused: the history of ${name} is broken`, 60);
        next = { ...opened, seq: record.seq };
      } else if (current.format === 1) {
        // Records from before this format hold no link: the one below opens with its own seal key.
        const record = records.filter((r) => r.seq < current.seq).at(-1);
        if (!record) break;
        next = { ...(await this.open(name, record)), seq: record.seq };
      }
      if (!next) break;
      out.push(next);
      current = next;
    }
    return out;
  }

  /** One entry per version, newest first: a re-sealed copy stands for the version it copies. */
  async versions(resolved: Resolved): Promise<Head[]> {
    const seen = new Set<number>();
    return (await this.walk(resolved)).filter((h) => !seen.has(h.payload.version) && seen.add(h.payload.version));
  }

  /** Seals `record` at the next position, linked to the head it was decided on; LostRace if another write landed first. */
  async append(resolved: Resolved, record: NewRecord): Promise<Head> {
    const { current } = await this.ring.ring();
    const seq = resolved.storeSeq + 1;
    const head = resolved.head;
    const payload: SecretPayload = {
      ...record,
      name: resolved.name,
      seq,
      prev: head ? { seq: head.seq, key: encodeKey(head.secretKey) } : undefined,
      legacy: head && (head.format === 1 || head.payload.legacy) ? true : undefined,
    };
    const sealed = sealSecret(payload, current);
    const landed = await this.store.append(resolved.name, sealed.record, resolved.storeSeq);
    if (landed === undefined) throw new LostRace();
    return { payload, seq, secretKey: sealed.secretKey, kid: current.id, format: 2 };
  }

  /** The head again, sealed under the newest seal key at the next position: same version, value, roles, writer and time. */
  async reseal(resolved: Resolved): Promise<Head> {
    const head = resolved.head;
    if (!head) throw new DssssError('not_found', `secret ${resolved.name} not found`);
    const { prev: _prev, seq: _seq, name: _name, legacy: _legacy, ...record } = head.payload;
    return this.append(resolved, record);
  }

  private async resolveFrom(name: string, records: StoredRecord[]): Promise<Resolved> {
    const storeSeq = records.at(-1)?.seq ?? 0;
    for (let i = records.length - 1; i >= 0; i--) {
      const record = records[i]!;
      const opened = await this.open(name, record);
      if (isCommitted(opened, record.seq)) return { name, storeSeq, head: { ...opened, seq: record.seq } };
    }
    return { name, storeSeq };
  }

  private async open(name: string, stored: StoredRecord): Promise<Opened> {
    const kid = recordKid(stored.record);
    const key = kid === undefined ? undefined : await this.ring.key(kid);
    if (!key) {
      throw new DssssError('integrity', kid === undefined ? 'stored record refused: it failed its integrity check' : 'stored record refused: it is sealed with an unknown seal key', 60);
    }
    return openSecret(stored.record, name, key, stored.seq, this.homeAccount);
  }
}
