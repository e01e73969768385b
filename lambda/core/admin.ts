// Seal-key administration, for distinguished roles: see the ring, rotate it, re-seal every
// secret's latest record under the newest key (a page of names per call, so the client
// paces and resumes), and retire a key once nothing kept needs it. And backups: every
// sealed record and the wrapped seal keys out, and back in without overwriting newer versions.

import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { recordKid, type SealKey } from './envelope';
import { badRequest, conflict, DssssError, notFound } from './errors';
import { Ledger, LostRace, type Head } from './ledger';
import type { Caller, Policy } from './policy';
import { SealKeyRing } from './seal-keys';
import { actorOf } from './service';
import type { ChangeEvent, Clock, KeyWrapper, SecretStore, StoredRecord } from '../ports';
import { MAX_TOKEN_TTL_SECONDS } from './token';

/** Names re-sealed per rewrap call: one Parameter Store listing page. */
export const REWRAP_PAGE = 10;
/**
 * A superseded key still opens tokens issued before the rotation (at most an hour) and
 * containers refresh their ring every five minutes: it may go only after both have passed.
 */
export const RETIRE_AFTER_MS = (MAX_TOKEN_TTL_SECONDS + 5 * 60) * 1000;

/** Names per backup page, each with its whole kept history (up to 100 records of 8 KB): under Lambda's 6 MB answer. */
export const BACKUP_PAGE = 5;
/** Versions one restore-backup call writes at most (PutParameter's quota is ~3/s): the client calls again for the rest. */
export const RESTORE_WRITES_PER_CALL = 5;

/** One name of a backup: every record the store kept, as stored (sealed). */
export interface BackupSecret {
  readonly name: string;
  readonly records: readonly StoredRecord[];
  /**
   * The backup's seal on the name's newest record as it was backed up (a MAC under a key only
   * the function can derive): a restore must bring that record back as the newest, never an
   * older one picked out of the backup.
   */
  readonly head: BackupHead;
}

export interface BackupHead {
  /** The seal key whose derived key made the MAC. */
  readonly kid: string;
  readonly mac: string;
}

export interface BackupPage {
  /** The seal-key slots as stored: wrapped by KMS, useless without it. */
  readonly sealKeys: Readonly<Record<string, string>>;
  readonly secrets: readonly BackupSecret[];
  readonly next?: string;
}

export interface RestoreResult {
  /** restored: versions written (more may remain); unchanged: the store already has them all; conflict: the store's history went another way, nothing written. */
  readonly status: 'restored' | 'unchanged' | 'conflict';
  readonly written: number;
  /** Versions still to write: call again. */
  readonly remaining: number;
  /** The store's newest version of the name after the call. */
  readonly version?: number;
}

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
  /** Opens a backup's seal keys (the same KMS key and encryption context). */
  readonly wrapper: KeyWrapper;
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

  /** One page of the backup: BACKUP_PAGE names with every record kept of each, and the seal-key slots. */
  async backup(caller: Caller, cursor?: string): Promise<BackupPage> {
    this.deps.policy.assertDistinguished(caller, 'back up the store');
    const sealKeys = Object.fromEntries(await this.deps.keys.storedSlots());
    const page = await this.deps.store.list('', BACKUP_PAGE, cursor, { fresh: true });
    const { current } = await this.deps.keys.ring();
    const secrets = await Promise.all(
      page.entries.map(async (e) => {
        const records = await this.deps.store.history(e.name);
        return { name: e.name, records, head: { kid: current.id, mac: headMac(current, e.name, records.at(-1)) } };
      }),
    );
    return { sealKeys, secrets, ...(page.next === undefined ? {} : { next: page.next }) };
  }

  /**
   * Puts one name of a backup back. The backup's records are opened with its own seal keys
   * (through KMS), and its versions that the store lacks are written on top, as they were
   * (version, value or tombstone, roles, writer, time), sealed under the store's newest key:
   * into a store without the name, every kept version; into one whose newest version is a
   * version of the backup, the later ones. A store that has a version the backup does not
   * (written since, or another history) is never overwritten: `conflict`, nothing written.
   * At most RESTORE_WRITES_PER_CALL versions per call; calling again resumes.
   */
  async restoreBackup(caller: Caller, sealKeys: Readonly<Record<string, string>>, secret: BackupSecret): Promise<RestoreResult> {
    this.deps.policy.assertDistinguished(caller, 'restore a backup');
    if (Object.keys(sealKeys).length === 0) throw new DssssError('bad_request', 'the backup holds no seal keys: its records cannot be opened');
    const { name } = secret;
    const slots = new Map(Object.entries(sealKeys));
    const ring = new SealKeyRing(
      { readMeta: async (keys) => new Map(keys.flatMap((k) => (slots.has(k) ? [[k, slots.get(k)!] as const] : []))), createMeta: async () => false, deleteMeta: async () => {} },
      this.deps.wrapper,
      this.deps.clock,
    );
    // The newest record given must be the one backed up: leaving later records out would
    // make an older version (older roles, an older value) the newest again.
    const sealer = (await ring.ring()).keys.get(secret.head.kid);
    const expected = sealer === undefined ? undefined : Buffer.from(headMac(sealer, name, latestOf(secret.records)), 'base64url');
    const given = Buffer.from(secret.head.mac, 'base64url');
    if (expected === undefined || expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw badRequest(`the backup of ${name} is not whole as it was taken: its newest record is missing or altered`);
    }
    const source = new Ledger(backupStore(secret), ring, this.deps.policy.config.homeAccount);
    let wanted: Head[];
    try {
      wanted = (await source.versions(await source.resolve(name))).reverse();
    } catch (err) {
      // The caller's input, not the store: altered, bound to another name, or another deployment's keys.
      if (err instanceof DssssError && err.code === 'integrity') throw badRequest(`the backup's records of ${name} do not open: altered, another name's, or another deployment's`);
      throw err;
    }

    let target = await this.deps.ledger.resolve(name, { fresh: true });
    const have = target.head?.payload.version ?? 0;
    if (target.head) {
      const same = wanted.find((h) => h.payload.version === have);
      if (!same || !sameVersion(same, target.head)) {
        // Newer than the backup: unchanged if the backup's newest version is in the store's history.
        const newest = wanted.at(-1);
        const kept = newest && have > newest.payload.version ? (await this.deps.ledger.versions(target)).find((h) => h.payload.version === newest.payload.version) : undefined;
        const status = kept && sameVersion(kept, newest!) ? 'unchanged' : 'conflict';
        return { status, written: 0, remaining: 0, version: have };
      }
    }
    const todo = wanted.filter((h) => h.payload.version > have);
    if (todo.length === 0) return { status: 'unchanged', written: 0, remaining: 0, ...(have > 0 ? { version: have } : {}) };
    let written = 0;
    for (const version of todo.slice(0, RESTORE_WRITES_PER_CALL)) {
      const { prev: _prev, seq: _seq, name: _name, legacy: _legacy, ...record } = version.payload;
      let head: Head;
      try {
        head = await this.deps.ledger.append(target, record);
      } catch (err) {
        if (err instanceof LostRace) throw conflict(`${name} changed while it was being restored: run the restore again`);
        throw err;
      }
      target = { name, storeSeq: head.seq, head };
      written++;
    }
    const version = target.head!.payload.version;
    await this.deps.publish({ operation: 'restore-backup', name, version, actor: actorOf(caller), time: this.now() });
    return { status: 'restored', written, remaining: todo.length - written, version };
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}

const BACKUP_MAC_LABEL = 'dssss backup head key v1';

/** HMAC-SHA256, under a key derived from the seal key, of the name and its newest record (none: an empty one). */
function headMac(sealKey: SealKey, name: string, head: StoredRecord | undefined): string {
  const key = hkdfSync('sha256', sealKey.key, new Uint8Array(0), BACKUP_MAC_LABEL, 32);
  return createHmac('sha256', Buffer.from(key)).update(`${name}\n${head?.seq ?? 0}\n${head?.record ?? ''}`).digest('base64url');
}

function latestOf(records: readonly StoredRecord[]): StoredRecord | undefined {
  return records.reduce<StoredRecord | undefined>((latest, r) => (latest === undefined || r.seq > latest.seq ? r : latest), undefined);
}

/** The same version: what it says and who wrote it when (a re-sealed copy is the same version). */
function sameVersion(a: Head, b: Head): boolean {
  const x = a.payload;
  const y = b.payload;
  return x.version === y.version && x.op === y.op && x.at === y.at && x.value === y.value && JSON.stringify(x.by) === JSON.stringify(y.by) && JSON.stringify(x.roles) === JSON.stringify(y.roles);
}

/** A backup's records of one name, as the read side of a store (nothing is written to it). */
function backupStore(secret: BackupSecret): SecretStore {
  const records = [...secret.records].sort((a, b) => a.seq - b.seq);
  const refuse = async (): Promise<never> => {
    throw new DssssError('bad_request', 'a backup is read-only');
  };
  return {
    latest: async (name) => (name === secret.name ? records.at(-1) : undefined),
    history: async (name) => (name === secret.name ? records : []),
    append: refuse,
    purge: refuse,
    list: refuse,
    readMeta: async () => new Map(),
    createMeta: async () => false,
    deleteMeta: refuse,
  };
}
