// What a secret name, a list prefix and a role name may look like. Names map onto
// Parameter Store paths, so the limits leave room for the deployment's prefix.

import { DssssError } from './errors';

export const MAX_NAME_LENGTH = 256;
export const MAX_NAME_DEPTH = 10;
export const MAX_ROLES = 20;

const SEGMENT = /^[A-Za-z0-9_.-]+$/;
const PREFIX = /^[A-Za-z0-9_./-]*$/;
// IAM role names: 1-64 characters of [\w+=,.@-].
const ROLE = /^[\w+=,.@-]{1,64}$/;

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
  return raw;
}

/** A list prefix is any leading part of a name: same characters, same length limit. */
export function parseNamePrefix(raw: string): string {
  if (raw.length > MAX_NAME_LENGTH || !PREFIX.test(raw)) {
    throw new DssssError('bad_request', 'invalid prefix: use the characters of a secret name');
  }
  return raw;
}

export function isRoleName(raw: string): boolean {
  return ROLE.test(raw);
}

export function parseRoles(raw: readonly string[]): string[] {
  if (raw.length === 0) throw new DssssError('bad_request', 'roles must name at least one IAM role');
  if (raw.length > MAX_ROLES) throw new DssssError('bad_request', `at most ${MAX_ROLES} roles`);
  for (const role of raw) {
    if (!isRoleName(role)) throw new DssssError('bad_request', 'roles must be IAM role names (1-64 of A-Z a-z 0-9 +=,.@_-)');
  }
  return [...new Set(raw)];
}
