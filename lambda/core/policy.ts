// Who may do what: the whole authorization table. Roles are account-bound references
// (roles.ts), pinned to the role's unique id where the secret knows it.

import { forbidden } from './errors';
import { refOf, splitRef, type RoleRef } from './roles';

export interface Caller {
  readonly account: string;
  readonly role: string;
  /** The role's unique id (AROA...), where AWS gave one at login. */
  readonly roleId?: string | undefined;
  /** Instance id, or role/session. */
  readonly principal: string;
}

/** What a secret says about who may read it. */
export interface Audience {
  readonly roles: readonly RoleRef[];
  /** Unique ids of the roles, where known when the secret was written. */
  readonly roleIds?: Readonly<Record<RoleRef, string>> | undefined;
}

/** Who may create names under `prefix` ('' or ending in '/'); '*' is any authenticated role. */
export interface WriterRule {
  readonly prefix: string;
  readonly roles: '*' | readonly RoleRef[];
}

export interface PolicyConfig {
  /** The deployment's own account: bare role names mean roles of this account. */
  readonly homeAccount: string;
  /** Admin roles: delete, restore, purge, rotate seal keys, overwrite any secret, list every name. */
  readonly distinguishedRoles: readonly RoleRef[];
  readonly writerRules: readonly WriterRule[];
}

export class Policy {
  private readonly distinguished: ReadonlySet<RoleRef>;
  /** Longest prefix first, so the first match is the most specific rule. */
  private readonly rules: readonly WriterRule[];

  constructor(readonly config: PolicyConfig) {
    this.distinguished = new Set(config.distinguishedRoles);
    this.rules = [...config.writerRules].sort((a, b) => b.prefix.length - a.prefix.length);
  }

  isDistinguished(caller: Caller): boolean {
    return this.distinguished.has(refOf(caller.account, caller.role));
  }

  /** Read: the caller's role, in its account, is one the secret names; its id, where pinned, matches. No exceptions, admins included. */
  mayRead(caller: Caller, audience: Audience): boolean {
    const ref = refOf(caller.account, caller.role);
    if (!audience.roles.includes(ref)) return false;
    const pinned = audience.roleIds?.[ref];
    return pinned === undefined || pinned === caller.roleId;
  }

  /** Create a new name: the most specific writer rule covering it decides; with none, a role writes under its own name. */
  mayCreate(caller: Caller, name: string): boolean {
    if (this.isDistinguished(caller)) return true;
    const rule = this.rules.find((r) => name.startsWith(r.prefix));
    if (rule) return rule.roles === '*' || rule.roles.includes(refOf(caller.account, caller.role));
    return caller.account === this.config.homeAccount && name.startsWith(`${caller.role}/`);
  }

  /** Overwrite (or delete-by-writing) an existing secret: its readers, and admins. */
  mayOverwrite(caller: Caller, existing: Audience): boolean {
    return this.isDistinguished(caller) || this.mayRead(caller, existing);
  }

  /** One refusal for "may not create it" and "may not overwrite it", so a PUT does not say which applied. */
  assertMayWrite(caller: Caller, name: string, existing: Audience | undefined): void {
    const allowed = existing === undefined ? this.mayCreate(caller, name) : this.mayOverwrite(caller, existing);
    if (!allowed) throw forbidden(`role ${caller.role} may not write secret ${name}`);
  }

  assertDistinguished(caller: Caller, what: string): void {
    if (!this.isDistinguished(caller)) throw forbidden(`only a distinguished role may ${what}; role ${caller.role} is not one`);
  }

  /** Listing shows the names a caller could read; distinguished roles see every name. */
  mayList(caller: Caller, audience: Audience): boolean {
    return this.isDistinguished(caller) || this.mayRead(caller, audience);
  }

  /** Home-account roles bare, others as account:name. */
  home(ref: RoleRef): boolean {
    return splitRef(ref).account === this.config.homeAccount;
  }
}
