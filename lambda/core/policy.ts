// Who may do what: the whole authorization table. Each refusal names the rule that failed.

import { forbidden } from './errors';

export interface Caller {
  readonly role: string;
  readonly principal: string;
}

export interface PolicyConfig {
  /** Admin roles: may delete, may overwrite any secret, list every name. */
  readonly distinguishedRoles: readonly string[];
  /** When set, only these roles (and distinguished roles) may create secrets. */
  readonly writerRoles?: readonly string[] | undefined;
}

export class Policy {
  private readonly distinguished: ReadonlySet<string>;
  private readonly writers: ReadonlySet<string> | undefined;

  constructor(config: PolicyConfig) {
    this.distinguished = new Set(config.distinguishedRoles);
    this.writers = config.writerRoles ? new Set(config.writerRoles) : undefined;
  }

  isDistinguished(caller: Caller): boolean {
    return this.distinguished.has(caller.role);
  }

  /** Read: the caller's role is one the secret is scoped to. No exceptions, admins included. */
  mayRead(caller: Caller, secretRoles: readonly string[]): boolean {
    return secretRoles.includes(caller.role);
  }

  assertMayRead(caller: Caller, secretRoles: readonly string[]): void {
    if (!this.mayRead(caller, secretRoles)) throw forbidden(`role ${caller.role} is not among the secret's roles`);
  }

  assertMayCreate(caller: Caller): void {
    if (this.writers && !this.writers.has(caller.role) && !this.isDistinguished(caller)) {
      throw forbidden(`role ${caller.role} is not a writer role`);
    }
  }

  assertMayOverwrite(caller: Caller, existingRoles: readonly string[]): void {
    if (!existingRoles.includes(caller.role) && !this.isDistinguished(caller)) {
      throw forbidden(`role ${caller.role} is not among the existing secret's roles`);
    }
  }

  assertMayDelete(caller: Caller): void {
    if (!this.isDistinguished(caller)) throw forbidden(`role ${caller.role} is not a distinguished role`);
  }

  /** Listing shows the names a caller could read; distinguished roles see every name. */
  mayList(caller: Caller, secretRoles: readonly string[]): boolean {
    return this.isDistinguished(caller) || this.mayRead(caller, secretRoles);
  }
}
