// Role references: which IAM role of which account. A secret's roles, the admin roles and
// the writer rules all name roles as `web` (the deployment's own account), `123456789012:web`
// or a role ARN; inside dssss they are always `account:name`.

import { DssssError } from './errors';

/** `account:name`, e.g. `123456789012:web`. */
export type RoleRef = string;

// IAM role names: 1-64 characters of [\w+=,.@-].
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const ACCOUNT = /^\d{12}$/;
const QUALIFIED = /^(\d{12}):([\w+=,.@-]{1,64})$/;
const ROLE_ARN = /^arn:aws(?:-cn|-us-gov)?:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;

export function isRoleName(raw: string): boolean {
  return ROLE_NAME.test(raw);
}

export function isAccountId(raw: string): boolean {
  return ACCOUNT.test(raw);
}

/** The canonical reference, or undefined if `raw` names no role. */
export function toRoleRef(raw: string, homeAccount: string): RoleRef | undefined {
  if (ROLE_NAME.test(raw)) return `${homeAccount}:${raw}`;
  const match = QUALIFIED.exec(raw) ?? ROLE_ARN.exec(raw);
  return match ? `${match[1]}:${match[2]}` : undefined;
}

export function parseRoleRef(raw: string, homeAccount: string): RoleRef {
  const ref = toRoleRef(raw, homeAccount);
  if (ref === undefined) {
    throw new DssssError('bad_request', 'roles must be IAM role names (1-64 of A-Z a-z 0-9 +=,.@_-), account:name, or role ARNs');
  }
  return ref;
}

export function refOf(account: string, role: string): RoleRef {
  return `${account}:${role}`;
}

export function splitRef(ref: RoleRef): { account: string; name: string } {
  const cut = ref.indexOf(':');
  return { account: ref.slice(0, cut), name: ref.slice(cut + 1) };
}

/** As the API shows it: bare for the deployment's own account, `account:name` otherwise. */
export function displayRole(ref: RoleRef, homeAccount: string): string {
  const { account, name } = splitRef(ref);
  return account === homeAccount ? name : ref;
}
