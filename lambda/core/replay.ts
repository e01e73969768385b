// Defences against a replayed identity document. A document never expires and anything on
// the instance can read it, so a copy logs in as the instance for as long as it exists.
// Beyond "the instance must be running" (the AWS role resolver), two opt-in checks in the
// spirit of Vault's EC2 auth: bind an instance's first login to a client nonce, and refuse
// documents of instances launched too long ago.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { ExpiringCache } from './cache';
import { badRequest, DssssError, invalidCredentials } from './errors';
import type { Bookkeeping, InstanceStates, RoleResolver } from '../ports';

/** off: the nonce header is ignored. optional: bind when a client sends one. required: every EC2 login must. */
export type NonceMode = 'off' | 'optional' | 'required';

export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
export const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const BINDING_VERSION = 1;

/** Nonce bindings, stored through the storage interface: they survive restarts and are shared by every container. */
export class NonceBindings {
  constructor(
    private readonly store: Bookkeeping,
    private readonly mode: Exclude<NonceMode, 'off'>,
    /**
     * Bindings read lately ('' for none), so a cached login costs no storage read. As stale as
     * the instance -> role cache may be: a binding made in another container is enforced here
     * once the entry expires.
     */
    private readonly seen?: ExpiringCache<string>,
  ) {}

  /**
   * Throws unless this login may proceed: the instance's bound nonce matches, or there is none
   * to match. `beforeBind`: what must hold before this login may bind the instance (claim it
   * for good); it throws if not.
   */
  async check(instanceId: string, nonce: string | undefined, beforeBind?: () => Promise<void>): Promise<void> {
    if (nonce !== undefined && !NONCE_PATTERN.test(nonce)) throw badRequest('X-Dssss-Nonce: 16 to 128 characters of A-Z a-z 0-9 _ -');
    // The id comes from a verified document, but it also names a stored key: only the real shape will do.
    if (!INSTANCE_ID.test(instanceId)) throw invalidCredentials('the document names no valid instance id', 'bad_document');
    const key = `nonce-${instanceId}`;

    const cached = this.seen?.get(key);
    const bound = cached === undefined ? await this.store.read(key) : cached || undefined;
    if (cached === undefined) this.seen?.set(key, bound ?? '');
    if (bound !== undefined) return assertSameNonce(bound, nonce);
    if (nonce === undefined) {
      if (this.mode === 'required') throw invalidCredentials('this server requires an X-Dssss-Nonce header on every login of an EC2 instance', 'nonce_required');
      return;
    }
    // First login with a nonce: bind it. If another login bound one meanwhile, that one rules.
    await beforeBind?.();
    const mine = binding(nonce);
    if (await this.store.createIfAbsent(key, mine)) {
      this.seen?.set(key, mine);
      return;
    }
    const winner = await this.store.read(key);
    if (winner === undefined) throw new DssssError('unavailable', 'a nonce binding vanished while being created; try again', 1);
    this.seen?.set(key, winner);
    assertSameNonce(winner, nonce);
  }
}

/** The store keeps a digest, so reading the store does not give the nonce away. */
function binding(nonce: string): string {
  return JSON.stringify({ v: BINDING_VERSION, sha256: digest(nonce).toString('hex') });
}

function assertSameNonce(stored: string, nonce: string | undefined): void {
  if (nonce === undefined) throw invalidCredentials('this instance is bound to a nonce: send it in X-Dssss-Nonce', 'nonce_missing');
  let expected: Buffer | undefined;
  try {
    const parsed = JSON.parse(stored) as { v?: unknown; sha256?: unknown };
    if (parsed.v === BINDING_VERSION && typeof parsed.sha256 === 'string' && /^[0-9a-f]{64}$/.test(parsed.sha256)) {
      expected = Buffer.from(parsed.sha256, 'hex');
    }
  } catch {
    // falls through to the integrity error
  }
  if (expected === undefined) throw new DssssError('integrity', 'a stored nonce binding is malformed', 60);
  if (!timingSafeEqual(expected, digest(nonce))) throw invalidCredentials('the nonce does not match the one this instance is bound to', 'nonce_mismatch');
}

function digest(nonce: string): Buffer {
  return createHash('sha256').update(nonce, 'utf8').digest();
}

/**
 * Refuses documents of instances whose pendingTime (launch or last start) is older than
 * `maxAgeSeconds`: with instances that are replaced often, an old document is a copied one.
 */
export function assertDocumentAge(pendingTime: string | undefined, nowMs: number, maxAgeSeconds: number | undefined): void {
  if (maxAgeSeconds === undefined) return;
  const pending = pendingTime === undefined ? NaN : Date.parse(pendingTime);
  if (!Number.isFinite(pending)) throw invalidCredentials('the document has no valid pendingTime', 'bad_document');
  if (nowMs - pending > maxAgeSeconds * 1000) {
    throw invalidCredentials(`the instance was started more than ${maxAgeSeconds} seconds ago; this server refuses documents that old`, 'document_too_old');
  }
}

/**
 * How a login made with an instance's role credentials (an IAM session named after the
 * instance, as EC2 names them) proves that the instance still runs, as an EC2 login must.
 */
export interface InstanceLiveness {
  assertRunning(instanceId: string, account: string, role: string): Promise<void>;
}

/** Through the role resolver (EC2 and IAM on AWS, the registry locally): running, as this role. */
export function livenessByResolver(roles: RoleResolver): InstanceLiveness {
  return {
    async assertRunning(instanceId, account, role) {
      const resolved = await roles.resolveRole({ instanceId, accountId: account, region: '' });
      if (resolved.role !== role) throw invalidCredentials('the session names an instance that does not run as this role', 'session_instance_mismatch');
    },
  };
}

/**
 * EC2's lifecycle, in the order an instance goes through it; the rank breaks ties between
 * reports of the same second (EventBridge's times have whole seconds).
 */
const LIFECYCLE = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] as const;
export type InstanceState = (typeof LIFECYCLE)[number];
const ENDED: ReadonlySet<string> = new Set<InstanceState>(['stopping', 'stopped', 'shutting-down', 'terminated']);

export function isInstanceState(state: unknown): state is InstanceState {
  return typeof state === 'string' && (LIFECYCLE as readonly string[]).includes(state);
}

/** Orders state reports: by time, then by lifecycle within one second. */
export function stateOrder(state: InstanceState, atMs: number): number {
  return Math.floor(atMs / 1000) * LIFECYCLE.length + LIFECYCLE.indexOf(state);
}

/**
 * Through the states EventBridge reported (no EC2 call): refused once the instance stops or
 * terminates. An instance with no report yet is let in: its launch may not have been
 * reported when it first logs in, and the IAM session itself proves the role.
 */
export function livenessByEvents(states: InstanceStates): InstanceLiveness {
  return {
    async assertRunning(instanceId) {
      const state = await states.state(instanceId);
      if (state !== undefined && ENDED.has(state)) throw invalidCredentials('instance is not running', 'instance_not_running');
    },
  };
}
