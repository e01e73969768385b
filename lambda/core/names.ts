// What a secret name, a list prefix and a role name may look like. Names map onto
// Parameter Store paths, so the limits leave room for the deployment's prefix.

import { DssssError } from './errors';
import { parseRoleRef, type RoleRef } from './roles';

export const MAX_NAME_LENGTH = 256;
export const MAX_NAME_DEPTH = 10;
export const MAX_ROLES = 20;

/** `GET /v1/secret/{name}/versions` and `POST /v1/secret/{name}/restore` are routes, not names. */
const RESERVED_LAST_SEGMENTS: ReadonlySet<string> = new Set(['versions', 'restore']);
const SEGMENT = /^[A-Za-z0-9_.-]+$/;
const PREFIX = /^[A-Za-z0-9_./-]*$/;

const invalidName = (why: string) => new DssssError('invalid_name', `invalid secret name: ${why}`);

export function parseSecretName(raw: string): string {
  if (raw.length === 0) throw invalidName('empty');
  if (raw.length > MAX_NAME_LENGTH) throw invalidName(`longer than ${MAX_NAME_LENGTH} characters`);
  const segments = raw.split('/');
  if (segments.length > MAX_NAME_DEPTH) throw invalidName(`more than ${MAX_NAME_DEPTH} segments`);
  for (const segment of segments) {
    if (segment === '') throw invalidName('empty segment');
    if (segment === '.' || segment === '..') throw invalidName('"." and ".." segments are not allowed');
    if (!SEGMENT.test(segment)) throw invalidName('segments may hold only A-Z a-z 0-9 _ . -');
  }
  if (RESERVED_LAST_SEGMENTS.has(segments.at(-1)!)) {
    throw invalidName(`a name may not end in "/versions" or "/restore": those routes are the API's`);
  }
  return raw;
}

/** A list prefix is any leading part of a name: same characters, same length limit. */
export function parseNamePrefix(raw: string): string {
  if (raw.length > MAX_NAME_LENGTH || !PREFIX.test(raw)) {
    throw new DssssError('bad_request', 'invalid prefix: use the characters of a secret name');
  }
  return raw;
}

/** A secret's roles: 1 to MAX_ROLES references, canonical and without repeats. */
export function parseRoles(raw: readonly string[], homeAccount: string): RoleRef[] {
  if (raw.length === 0) throw new DssssError('bad_request', 'roles must name at least one IAM role');
  if (raw.length > MAX_ROLES) throw new DssssError('bad_request', `at most ${MAX_ROLES} roles`);
  return [...new Set(raw.map((role) => parseRoleRef(role, homeAccount)))];
}
