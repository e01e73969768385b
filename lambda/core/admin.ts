// Seal-key administration, for distinguished roles: see the ring, rotate it, re-seal every
// secret's latest record under the newest key (a page of names per call, so the client
// paces and resumes), and retire a key once nothing kept needs it.

import { recordKid } from './envelope';
import { conflict, DssssError, notFound } from './errors';
import { LostRace, type Ledger } from './ledger';
import type { Caller, Policy } from './policy';
import type { SealKeyRing } from './seal-keys';
import { actorOf } from './service';
import type { ChangeEvent, Clock, SecretStore } from '../ports';
import { MAX_TOKEN_TTL_SECONDS } from './token';

/** Names re-sealed per rewrap call: one Parameter Store listing page. */
export const REWRAP_PAGE = 10;
/**
 * A superseded key still opens tokens issued before the rotation (at most an hour) and
 * containers refresh their ring every five minutes: it may go only after both have passed.
 */
export const RETIRE_AFTER_MS = (MAX_TOKEN_TTL_SECONDS + 5 * 60) * 1000;

export interface SealKeyInfo {
  readonly id: string;
  readonly slot: number;
  readonly created?: string | undefined;
  readonly current: boolean;
}

export interface AdminDeps {
  readonly store: SecretStore;
  readonly keys: SealKeyRing;
  readonly ledger: Ledger;
  readonly policy: Policy;
  readonly clock: Clock;
  readonly publish: (event: ChangeEvent) => Promise<void>;
}

export class AdminService {
  constructor(private readonly deps: AdminDeps) {}

  async sealKeys(caller: Caller): Promise<{ keys: SealKeyInfo[]; retired: { id: string; slot: number; retired: string }[] }> {
    this.deps.policy.assertDistinguished(caller, 'see the seal keys');
    const ring = await this.deps.keys.ring();
    const keys = [...ring.keys.values()]
      .sort((a, b) => a.slot - b.slot)
      .map((k) => ({ id: k.id, slot: k.slot, created: k.created, current: k.id === ring.current.id }));
    return { keys, retired: ring.retired.map((r) => ({ id: r.id, slot: r.slot, retired: r.retired })) };
  }

  async rotate(caller: Caller): Promise<SealKeyInfo> {
    this.deps.policy.assertDistinguished(caller, 'rotate the seal key');
    const key = await this.deps.keys.rotate();
    await this.deps.publish({ operation: 'rotate-seal-key', actor: actorOf(caller), time: this.now() });
    return { id: key.id, slot: key.slot, created: key.created, current: true };
  }

  /**
   * Re-seals, under the newest seal key, the latest record of each name of one listing page
   * that another key seals. Same version, value, roles, writer and time; a name already
   * sealed under the newest key is left alone, so running it again only finishes the job.
   */
  async rewrap(caller: Caller, cursor?: string): Promise<{ rewrapped: number; unchanged: number; next?: string }> {
    this.deps.policy.assertDistinguished(caller, 'rewrap secrets');
    const { current } = await this.deps.keys.ring();
    const page = await this.deps.store.list('', REWRAP_PAGE, cursor, { fresh: true });
    let rewrapped = 0;
    let unchanged = 0;
    for (const entry of page.entries) {
      let resolved = await this.deps.ledger.resolveListed(entry.name, entry);
      for (let attempt = 1; ; attempt++) {
        const head = resolved.head;
        // A lost race's record above the head may be sealed under an older key: bury it too.
        if (!head || (head.kid === current.id && head.format === 2 && resolved.storeSeq === head.seq)) {
          unchanged++;
          break;
        }
        try {
          await this.deps.ledger.reseal(resolved);
          rewrapped++;
          break;
        } catch (err) {
          if (!(err instanceof LostRace) || attempt === 3) throw err;
          resolved = await this.deps.ledger.resolve(entry.name, { fresh: true });
        }
      }
    }
    return { rewrapped, unchanged, ...(page.next === undefined ? {} : { next: page.next }) };
  }

  /** Retires `kid`: refused while it is the newest, was superseded too recently, or any kept record still needs it. */
  async retire(caller: Caller, kid: string): Promise<void> {
    this.deps.policy.assertDistinguished(caller, 'retire a seal key');
    const ring = await this.deps.keys.ring();
    const key = ring.keys.get(kid);
    if (!key) throw notFound(`no seal key ${kid} in the ring`);
    if (key.id === ring.current.id) throw conflict('the newest seal key cannot be retired: rotate first');
    const successor = [...ring.keys.values()].filter((k) => k.slot > key.slot).sort((a, b) => a.slot - b.slot)[0];
    const since = successor?.created === undefined ? 0 : this.deps.clock.now() - Date.parse(successor.created);
    if (since < RETIRE_AFTER_MS) {
      throw conflict(`seal key ${kid} was superseded less than ${RETIRE_AFTER_MS / 60_000} minutes ago: tokens it issued may still be valid`);
    }
    let cursor: string | undefined;
    let users = 0;
    do {
      const page = await this.deps.store.list('', 100, cursor, { fresh: true });
      for (const entry of page.entries) {
        // The newest stored record is read first on every request, committed or not.
        if (recordKid(entry.record) === kid) {
          users++;
          continue;
        }
        const head = (await this.deps.ledger.resolveListed(entry.name, entry)).head;
        if (!head) continue;
        // Format-1 records below a head open only with the key that sealed them: the first one.
        if (head.kid === kid || ((head.format === 1 || head.payload.legacy) && key.slot === 1)) users++;
      }
      cursor = page.next;
    } while (cursor !== undefined);
    if (users > 0) throw new DssssError('conflict', `seal key ${kid} still seals ${users} secret(s): run dssss admin rewrap first`);
    await this.deps.keys.retire(kid);
    await this.deps.publish({ operation: 'retire-seal-key', actor: actorOf(caller), time: this.now() });
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}
