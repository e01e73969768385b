// The secret store's operations, in domain terms: log in, authenticate, put, get, history,
// delete (soft), restore, purge, list and bulk read. Ports in, plain values out; no HTTP,
// no AWS. Every write is decided on the version it replaces and lands only on top of it.

import { conflict, DssssError, invalidCredentials, notFound, tooLarge } from './errors';
import type { Operation } from './envelope';
import { parseIamLoginRequest, principalFromArn, type IamLoginConfig } from './iam-login';
import { LostRace, Ledger, type Head, type NewRecord, type Resolved } from './ledger';
import { parseNamePrefix, parseRoles, parseSecretName } from './names';
import { assertDocumentAge, INSTANCE_ID, type InstanceLiveness, type NonceBindings } from './replay';
import { displayRole, refOf, splitRef, type RoleRef } from './roles';
import type { Audience, Caller, Policy } from './policy';
import type { SealKeyRing } from './seal-keys';
import { issueToken, verifyToken, type AuthMethod, type TokenClaims } from './token';
import type { ChangeEvent, Clock, EventPublisher, InstanceIdentity, RoleDirectory, RoleResolver, SecretStore, StsGateway } from '../ports';

/** UTF-8 bytes of one secret value. Leaves room in an 8 KiB record for name, roles and history link. */
export const MAX_SECRET_BYTES = 4096;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 100;
/**
 * A write that keeps losing its race to other writes of the same name gives up after this
 * many tries (409, retry later), each after a short jittered pause: on Parameter Store
 * every try costs a PutParameter (about 3 a second per account) and a history slot.
 */
const WRITE_ATTEMPTS = 5;
const pause = (attempt: number) => new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));

export interface ServiceDeps {
  readonly store: SecretStore;
  readonly keys: SealKeyRing;
  readonly roles: RoleResolver;
  /** Verifies a signed instance identity document; rejects with `invalid_credentials`. */
  readonly verifyIdentity: (document: string) => Promise<InstanceIdentity>;
  readonly policy: Policy;
  /** IAM login: its settings and the way to STS; undefined when it is off. */
  readonly iam?: { readonly config: IamLoginConfig & { readonly iamUsers: readonly string[] }; readonly sts: StsGateway } | undefined;
  /** Accounts whose instances or roles may log in; undefined: any (local mode, where registration decides). */
  readonly allowedAccounts?: readonly string[] | undefined;
  readonly clock: Clock;
  readonly tokenTtlSeconds: number;
  /** Whether the instance an IAM session is named after still runs (its role credentials outlive it). */
  readonly instances: InstanceLiveness;
  /** Whether the instance runs as this role in this account, asked of EC2 (the role resolver). */
  readonly instanceRoles: InstanceLiveness;
  /** Binds an instance's first login to a client nonce; undefined: off. */
  readonly nonces?: NonceBindings | undefined;
  /** Refuse documents whose pendingTime is older than this; undefined: no limit. */
  readonly maxDocumentAgeSeconds?: number | undefined;
  /** Unique ids of the home account's roles, pinned into secrets as they are written; undefined: names only. */
  readonly directory?: RoleDirectory | undefined;
  /** Where change events go; undefined: nowhere (the audit line still records the change). */
  readonly events?: EventPublisher | undefined;
  /** Told of a failed event publish (counted and logged); the write stands. */
  readonly onEventFailure?: ((err: unknown) => void) | undefined;
}

export interface Login {
  readonly token: string;
  readonly role: string;
  readonly expiresAt: string;
}

export interface Secret {
  readonly name: string;
  readonly secret: string;
  readonly version: number;
  readonly roles: readonly string[];
}

export interface VersionInfo {
  readonly version: number;
  readonly operation: Operation;
  readonly deleted: boolean;
  readonly at: string;
  readonly by: { readonly role: string; readonly principal: string };
  readonly roles: readonly string[];
  readonly restoredFrom?: number | undefined;
}

export interface ListOptions {
  /** Bulk read: the value of every listed secret the caller may read. */
  readonly values?: boolean | undefined;
  /** Soft-deleted names instead of live ones (distinguished roles). */
  readonly deleted?: boolean | undefined;
  /** Each listed name's version, time, writer and roles, where the caller may read it (`ls -l`). */
  readonly details?: boolean | undefined;
}

/** A listed name, with its latest version's metadata when the caller may read it (never a value). */
export interface ListEntry {
  readonly name: string;
  readonly version?: number;
  readonly updated?: string;
  readonly by?: { readonly role: string; readonly principal: string };
  readonly roles?: readonly string[];
}

export interface Listing {
  readonly names: string[];
  readonly secrets?: Secret[] | undefined;
  readonly entries?: ListEntry[] | undefined;
  readonly next?: string | undefined;
}

export class SecretService {
  private readonly ledger: Ledger;
  private readonly home: string;

  constructor(private readonly deps: ServiceDeps) {
    this.home = deps.policy.config.homeAccount;
    this.ledger = new Ledger(deps.store, deps.keys, this.home);
  }

  // --- logging in ---------------------------------------------------------------------

  /** `nonce`: the client's X-Dssss-Nonce, checked against the instance's binding (see replay.ts). */
  async loginWithIdentityDocument(document: string, nonce?: string): Promise<Login & { caller: Caller }> {
    const identity = await this.deps.verifyIdentity(document);
    this.assertAllowedAccount(identity.accountId);
    assertDocumentAge(identity.pendingTime, this.deps.clock.now(), this.deps.maxDocumentAgeSeconds);
    const role = await this.deps.roles.resolveRole(identity);
    // Only after the instance proved to be real, so strangers cannot create bindings.
    await this.deps.nonces?.check(identity.instanceId, nonce);
    return this.issue({ account: identity.accountId, role: role.role, roleId: role.roleId, principal: identity.instanceId }, 'ec2');
  }

  /**
   * `input` is the client's JSON: a signed sts:GetCallerIdentity request, checked before
   * anything is sent. An instance's role credentials (a session named after the instance)
   * meet the EC2 login's defences too: the instance must still run (its credentials outlive
   * it by hours), and its nonce binding holds here as well. The maximum document age does
   * not apply: STS says nothing of when the instance started.
   */
  async loginWithIam(input: unknown, nonce?: string): Promise<Login & { caller: Caller }> {
    const { iam } = this.deps;
    if (iam === undefined) {
      throw notFound('IAM login is not enabled on this server (it needs DSSSS_SERVER_ID, and in local mode DSSSS_ALLOWED_ACCOUNTS)');
    }
    const request = parseIamLoginRequest(input, iam.config);
    const identity = await iam.sts.getCallerIdentity(request);
    const principal = principalFromArn(identity, iam.config.partition, iam.config.iamUsers);
    this.assertAllowedAccount(principal.account);
    if (principal.session !== undefined && INSTANCE_ID.test(principal.session)) {
      const instanceId = principal.session;
      await this.deps.instances.assertRunning(instanceId, principal.account, principal.role);
      // Anyone who may assume a role can name its session after any instance: binding the
      // instance's nonce (claiming it for good) takes proof that this is the instance's own
      // role in its own account (EC2, once per instance and container).
      await this.deps.nonces?.check(instanceId, nonce, () => this.deps.instanceRoles.assertRunning(instanceId, principal.account, principal.role));
    }
    return this.issue({ account: principal.account, role: principal.role, roleId: principal.roleId, principal: principal.principal }, 'iam');
  }

  private assertAllowedAccount(account: string): void {
    if (this.deps.allowedAccounts && !this.deps.allowedAccounts.includes(account)) {
      throw invalidCredentials('the caller\'s account is not an allowed account', 'account_not_allowed');
    }
  }

  private async issue(caller: Caller, method: AuthMethod): Promise<Login & { caller: Caller }> {
    const { current } = await this.deps.keys.ring();
    const iat = Math.floor(this.deps.clock.now() / 1000);
    const claims: TokenClaims = { ...caller, method, iat, exp: iat + this.deps.tokenTtlSeconds, kid: current.id };
    return {
      token: issueToken(claims, current.token),
      role: displayRole(refOf(caller.account, caller.role), this.home),
      expiresAt: new Date(claims.exp * 1000).toISOString(),
      caller,
    };
  }

  async authenticateToken(token: string): Promise<Caller> {
    const { tokenKeys } = await this.deps.keys.ring();
    const claims = verifyToken(token, tokenKeys, Math.floor(this.deps.clock.now() / 1000));
    return { account: claims.account, role: claims.role, roleId: claims.roleId, principal: claims.principal };
  }

  // --- writing ------------------------------------------------------------------------

  async put(caller: Caller, rawName: string, value: string, rawRoles: readonly string[]): Promise<{ name: string; version: number }> {
    const name = parseSecretName(rawName);
    const roles = parseRoles(rawRoles, this.home);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_SECRET_BYTES) throw tooLarge(`the secret is ${bytes} bytes; the limit is ${MAX_SECRET_BYTES}`);
    return this.write(caller, name, 'put', async (head) => {
      if (head?.payload.op === 'delete') {
        // Its last readers and the admins learn why; anyone else gets the refusal a live secret would give.
        if (!this.deps.policy.mayOverwrite(caller, head.payload)) this.deps.policy.assertMayWrite(caller, name, head.payload);
        throw conflict(`secret ${name} is deleted: a distinguished role restores or purges it before it is written again`);
      }
      this.deps.policy.assertMayWrite(caller, name, head?.payload);
      // Only a caller who may write learns whether a role exists (and costs an iam:GetRole).
      return { op: 'put', value, roles, roleIds: await this.pin(roles) };
    });
  }

  /** Soft delete: a sealed tombstone becomes the latest version; every earlier version stays until purged. */
  async delete(caller: Caller, rawName: string): Promise<{ name: string; version: number }> {
    const name = parseSecretName(rawName);
    this.deps.policy.assertDistinguished(caller, 'delete secrets');
    return this.write(caller, name, 'delete', (head) => {
      if (!head) throw notFound(`secret ${name} not found`);
      if (head.payload.op === 'delete') throw new DssssError('deleted', `secret ${name} is already deleted`);
      return { op: 'delete', roles: head.payload.roles, roleIds: head.payload.roleIds };
    });
  }

  /** The last live version, value and roles, as a new latest version of a deleted secret. */
  async restore(caller: Caller, rawName: string): Promise<{ name: string; version: number; restoredFrom: number }> {
    const name = parseSecretName(rawName);
    this.deps.policy.assertDistinguished(caller, 'restore secrets');
    let restoredFrom = 0;
    const written = await this.write(caller, name, 'restore', async (head, resolved) => {
      if (!head) throw notFound(`secret ${name} not found`);
      if (head.payload.op !== 'delete') throw conflict(`secret ${name} is not deleted`);
      const live = (await this.ledger.versions(resolved)).find((v) => v.payload.op !== 'delete');
      if (live?.payload.value === undefined) throw notFound(`secret ${name} has no earlier version to restore`);
      restoredFrom = live.payload.version;
      return { op: 'restore', value: live.payload.value, roles: live.payload.roles, roleIds: live.payload.roleIds, restoredFrom };
    });
    return { ...written, restoredFrom };
  }

  /** Destroys every version of a name, for good. */
  async purge(caller: Caller, rawName: string): Promise<void> {
    const name = parseSecretName(rawName);
    this.deps.policy.assertDistinguished(caller, 'purge secrets');
    if (!(await this.deps.store.purge(name))) throw notFound(`secret ${name} not found`);
    await this.publish({ operation: 'purge', name, actor: actorOf(caller), time: this.now() });
  }

  /**
   * Decide on the head, append on top of it; when another write landed first, decide again
   * on the new head, so no decision is ever applied to a version it did not see.
   */
  private async write(
    caller: Caller,
    name: string,
    operation: Operation,
    decide: (head: Head | undefined, resolved: Resolved) => Omit<NewRecord, 'version' | 'at' | 'by'> | Promise<Omit<NewRecord, 'version' | 'at' | 'by'>>,
  ): Promise<{ name: string; version: number }> {
    for (let attempt = 1; ; attempt++) {
      const resolved = await this.ledger.resolve(name, { fresh: true });
      const fields = await decide(resolved.head, resolved);
      const version = (resolved.head?.payload.version ?? 0) + 1;
      try {
        await this.ledger.append(resolved, { ...fields, version, at: this.now(), by: actorOf(caller) });
      } catch (err) {
        if (!(err instanceof LostRace)) throw err;
        if (attempt < WRITE_ATTEMPTS) {
          await pause(attempt);
          continue;
        }
        throw conflict(`secret ${name} kept changing while being written; retry`);
      }
      await this.publish({ operation, name, version, actor: actorOf(caller), time: this.now() });
      return { name, version };
    }
  }

  /** The unique ids of the home account's roles, so a role deleted and created again under the same name does not inherit. */
  private async pin(roles: readonly RoleRef[]): Promise<Readonly<Record<RoleRef, string>> | undefined> {
    const { directory } = this.deps;
    if (!directory) return undefined;
    const unpinned = new Set(this.deps.iam?.config.iamUsers ?? []);
    const ids: Record<RoleRef, string> = {};
    await Promise.all(
      roles.map(async (ref) => {
        const { account, name } = splitRef(ref);
        if (account !== this.home || unpinned.has(name)) return;
        const id = await directory.roleId(account, name);
        if (id === undefined) throw new DssssError('unknown_role', `role ${name} does not exist in account ${account}`);
        ids[ref] = id;
      }),
    );
    return Object.keys(ids).length === 0 ? undefined : ids;
  }

  // --- reading ------------------------------------------------------------------------

  /** `fresh`: past any read cache (the client said Cache-Control: no-cache). */
  async get(caller: Caller, rawName: string, version?: number, fresh = false): Promise<Secret> {
    const name = parseSecretName(rawName);
    const resolved = await this.ledger.resolve(name, { fresh });
    const head = this.readable(caller, name, resolved);
    if (head.payload.op === 'delete') throw new DssssError('deleted', `secret ${name} is deleted`);
    if (version === undefined || version === head.payload.version) return this.toSecret(head);
    // The latest roles govern every version: narrowing a secret's roles also closes its history.
    const older = (await this.ledger.versions(resolved)).find((v) => v.payload.version === version);
    if (!older) throw notFound(`secret ${name} has no version ${version}`);
    if (older.payload.op === 'delete') throw new DssssError('deleted', `version ${version} of secret ${name} is a deletion`);
    return this.toSecret(older);
  }

  /** Every kept version, newest first, without values: the readers of the latest version (deleted or not), and admins. */
  async history(caller: Caller, rawName: string): Promise<{ name: string; versions: VersionInfo[] }> {
    const name = parseSecretName(rawName);
    const resolved = await this.ledger.resolve(name);
    if (!this.deps.policy.isDistinguished(caller)) this.readable(caller, name, resolved);
    else if (!resolved.head) throw notFound(`secret ${name} not found`);
    const versions = (await this.ledger.versions(resolved)).map(({ payload: p }) => ({
      version: p.version,
      operation: p.op,
      deleted: p.op === 'delete',
      at: p.at,
      by: { role: displayRole(refOf(p.by.account, p.by.role), this.home), principal: p.by.principal },
      roles: p.roles.map((r) => displayRole(r, this.home)),
      ...(p.restoredFrom === undefined ? {} : { restoredFrom: p.restoredFrom }),
    }));
    return { name, versions };
  }

  /** Names the caller may read (every name for distinguished roles), one store page at a time; with `values`, the secrets it may read too. */
  async list(caller: Caller, rawPrefix: string, limit: number, cursor?: string, options: ListOptions = {}, fresh = false): Promise<Listing> {
    const prefix = parseNamePrefix(rawPrefix);
    const { policy } = this.deps;
    if (options.deleted) policy.assertDistinguished(caller, 'list deleted secrets');
    const page = await this.deps.store.list(prefix, limit, cursor, { fresh });
    const names: string[] = [];
    const secrets: Secret[] = [];
    const entries: ListEntry[] = [];
    for (const entry of page.entries) {
      let head: Head | undefined;
      try {
        head = (await this.ledger.resolveListed(entry.name, entry)).head;
      } catch (err) {
        if (err instanceof DssssError && err.code === 'integrity') continue; // a record that does not open is nobody's to read
        throw err;
      }
      if (!head || (head.payload.op === 'delete') !== (options.deleted === true)) continue;
      if (!policy.mayList(caller, head.payload)) continue;
      names.push(entry.name);
      const readable = policy.mayRead(caller, head.payload);
      if (options.values && !options.deleted && readable) secrets.push(this.toSecret(head));
      // A name a distinguished role may only list carries nothing but its name.
      if (options.details) entries.push(readable ? this.toEntry(head) : { name: entry.name });
    }
    return {
      names,
      ...(options.values ? { secrets } : {}),
      ...(options.details ? { entries } : {}),
      ...(page.next === undefined ? {} : { next: page.next }),
    };
  }

  /** The head, if the caller may read it; one answer for "no such secret" and "not yours to read". */
  private readable(caller: Caller, name: string, resolved: Resolved): Head {
    const head = resolved.head;
    if (!head) throw notFound(`secret ${name} not found`);
    if (!this.deps.policy.mayRead(caller, head.payload as Audience)) {
      throw new DssssError('not_found', `secret ${name} not found`, undefined, { reason: 'not_a_reader' });
    }
    return head;
  }

  private toEntry(head: Head): ListEntry {
    const p = head.payload;
    return {
      name: p.name,
      version: p.version,
      updated: p.at,
      by: { role: displayRole(refOf(p.by.account, p.by.role), this.home), principal: p.by.principal },
      roles: p.roles.map((r) => displayRole(r, this.home)),
    };
  }

  private toSecret(head: Head): Secret {
    const p = head.payload;
    return { name: p.name, secret: p.value ?? '', version: p.version, roles: p.roles.map((r) => displayRole(r, this.home)) };
  }

  // --- events -------------------------------------------------------------------------

  async publish(event: ChangeEvent): Promise<void> {
    if (!this.deps.events) return;
    try {
      await this.deps.events.publish([event]);
    } catch (err) {
      this.deps.onEventFailure?.(err);
    }
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  /** For the admin operations, which walk the same records. */
  get records(): Ledger {
    return this.ledger;
  }
}

export function actorOf(caller: Caller): { account: string; role: string; principal: string } {
  return { account: caller.account, role: caller.role, principal: caller.principal };
}
