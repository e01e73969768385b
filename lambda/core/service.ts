// The secret store's operations, in domain terms: log in, authenticate, put, get, list,
// delete. Ports in, plain values out; no HTTP, no AWS.

import { DssssError, invalidCredentials, notFound, tooLarge } from './errors';
import { openSecret, sealSecret, type SecretPayload } from './envelope';
import { parseIamLoginRequest, principalFromArn, type IamLoginConfig } from './iam-login';
import { parseNamePrefix, parseRoles, parseSecretName } from './names';
import { assertDocumentAge, type NonceBindings } from './replay';
import type { Caller, Policy } from './policy';
import type { SealKeyRing } from './seal-keys';
import { issueToken, verifyToken, type AuthMethod, type TokenClaims } from './token';
import type { Clock, InstanceIdentity, RoleResolver, SecretStore, StsGateway } from '../ports';

/** UTF-8 bytes of one secret value. Leaves room in an 8 KiB record for name and roles. */
export const MAX_SECRET_BYTES = 4096;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 100;

export interface ServiceDeps {
  readonly store: SecretStore;
  readonly keys: SealKeyRing;
  readonly roles: RoleResolver;
  /** Verifies a signed instance identity document; throws `invalid_credentials`. */
  readonly verifyIdentity: (document: string) => InstanceIdentity;
  readonly policy: Policy;
  /** IAM login: its settings and the way to STS; undefined when it is off. */
  readonly iam?: { readonly config: IamLoginConfig & { readonly iamUsers: readonly string[] }; readonly sts: StsGateway } | undefined;
  /** Accounts whose instances or roles may log in; undefined: any (local mode, where registration decides). */
  readonly allowedAccounts?: readonly string[] | undefined;
  readonly clock: Clock;
  readonly tokenTtlSeconds: number;
  /** Binds an instance's first login to a client nonce; undefined: off. */
  readonly nonces?: NonceBindings | undefined;
  /** Refuse documents whose pendingTime is older than this; undefined: no limit. */
  readonly maxDocumentAgeSeconds?: number | undefined;
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

export class SecretService {
  constructor(private readonly deps: ServiceDeps) {}

  /** `nonce`: the client's X-Dssss-Nonce, checked against the instance's binding (see replay.ts). */
  async loginWithIdentityDocument(document: string, nonce?: string): Promise<Login & { caller: Caller }> {
    const identity = this.deps.verifyIdentity(document);
    this.assertAllowedAccount(identity.accountId);
    assertDocumentAge(identity.pendingTime, this.deps.clock.now(), this.deps.maxDocumentAgeSeconds);
    const role = await this.deps.roles.resolveRole(identity);
    // Only after the instance proved to be real, so strangers cannot create bindings.
    await this.deps.nonces?.check(identity.instanceId, nonce);
    return this.issue(role, identity.instanceId, 'ec2');
  }

  /** `input` is the client's JSON: a signed sts:GetCallerIdentity request, checked before anything is sent. */
  async loginWithIam(input: unknown): Promise<Login & { caller: Caller }> {
    const { iam } = this.deps;
    if (iam === undefined) {
      throw notFound('IAM login is not enabled on this server (it needs DSSSS_SERVER_ID, and in local mode DSSSS_ALLOWED_ACCOUNTS)');
    }
    const request = parseIamLoginRequest(input, iam.config);
    const identity = await iam.sts.getCallerIdentity(request);
    const principal = principalFromArn(identity, iam.config.partition, iam.config.iamUsers);
    this.assertAllowedAccount(principal.account);
    return this.issue(principal.role, principal.principal, 'iam');
  }

  private assertAllowedAccount(account: string): void {
    if (this.deps.allowedAccounts && !this.deps.allowedAccounts.includes(account)) {
      throw invalidCredentials('the caller\'s account is not an allowed account');
    }
  }

  private async issue(role: string, principal: string, method: AuthMethod): Promise<Login & { caller: Caller }> {
    const { token: tokenKey } = await this.deps.keys.keys();
    const iat = Math.floor(this.deps.clock.now() / 1000);
    const claims: TokenClaims = { role, principal, method, iat, exp: iat + this.deps.tokenTtlSeconds, kid: tokenKey.kid };
    return {
      token: issueToken(claims, tokenKey),
      role,
      expiresAt: new Date(claims.exp * 1000).toISOString(),
      caller: { role, principal },
    };
  }

  async authenticateToken(token: string): Promise<Caller> {
    const { token: tokenKey } = await this.deps.keys.keys();
    const claims = verifyToken(token, tokenKey, Math.floor(this.deps.clock.now() / 1000));
    return { role: claims.role, principal: claims.principal };
  }

  async put(caller: Caller, rawName: string, value: string, rawRoles: readonly string[]): Promise<{ name: string; version: number }> {
    const name = parseSecretName(rawName);
    const roles = parseRoles(rawRoles);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_SECRET_BYTES) throw tooLarge(`the secret is ${bytes} bytes; the limit is ${MAX_SECRET_BYTES}`);
    const { seal } = await this.deps.keys.keys();
    const { store, policy } = this.deps;
    const payload: SecretPayload = {
      name,
      roles,
      value,
      createdAt: new Date(this.deps.clock.now()).toISOString(),
      createdBy: `${caller.role} ${caller.principal}`,
    };

    const existing = await store.read(name);
    if (existing) {
      policy.assertMayOverwrite(caller, openSecret(existing.record, name, seal).roles);
      return { name, version: await store.update(name, sealSecret(payload, seal)) };
    }
    policy.assertMayCreate(caller);
    try {
      return { name, version: await store.create(name, sealSecret(payload, seal)) };
    } catch (err) {
      if (err instanceof DssssError && err.code === 'conflict') {
        throw new DssssError('conflict', `secret ${name} was created by another request at the same time; retry`);
      }
      throw err;
    }
  }

  async get(caller: Caller, rawName: string, version?: number): Promise<Secret> {
    const name = parseSecretName(rawName);
    const { seal } = await this.deps.keys.keys();
    const latest = await this.deps.store.read(name);
    if (!latest) throw notFound(`secret ${name} not found`);
    const latestPayload = openSecret(latest.record, name, seal);
    // The latest roles govern every version: narrowing a secret's roles also closes its history.
    this.deps.policy.assertMayRead(caller, latestPayload.roles);
    if (version === undefined || version === latest.version) return toSecret(latestPayload, latest.version);

    const older = await this.deps.store.read(name, version);
    if (!older) throw notFound(`secret ${name} has no version ${version}`);
    const payload = openSecret(older.record, name, seal);
    this.deps.policy.assertMayRead(caller, payload.roles);
    return toSecret(payload, older.version);
  }

  async delete(caller: Caller, rawName: string): Promise<void> {
    const name = parseSecretName(rawName);
    this.deps.policy.assertMayDelete(caller);
    if (!(await this.deps.store.delete(name))) throw notFound(`secret ${name} not found`);
  }

  /** Names the caller may read (every name for distinguished roles), one store page at a time. */
  async list(caller: Caller, rawPrefix: string, limit: number, cursor?: string): Promise<{ names: string[]; next?: string }> {
    const prefix = parseNamePrefix(rawPrefix);
    const { seal } = await this.deps.keys.keys();
    const page = await this.deps.store.list(prefix, limit, cursor);
    const names: string[] = [];
    for (const { name, record } of page.entries) {
      if (this.deps.policy.isDistinguished(caller)) {
        names.push(name);
        continue;
      }
      let roles: readonly string[];
      try {
        roles = openSecret(record, name, seal).roles;
      } catch {
        continue; // a record that does not open is nobody's to read
      }
      if (this.deps.policy.mayList(caller, roles)) names.push(name);
    }
    return page.next === undefined ? { names } : { names, next: page.next };
  }
}

function toSecret(payload: SecretPayload, version: number): Secret {
  return { name: payload.name, secret: payload.value, version, roles: payload.roles };
}
