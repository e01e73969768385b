// IAM login: a client signs sts:GetCallerIdentity with its own credentials and sends us the
// signed request; we forward it to STS, whose answer names the caller. This module decides
// what may be forwarded (only GetCallerIdentity, only to STS, only if signed for this
// server) and what the answer means. It sends nothing itself.

import { timingSafeEqual } from 'node:crypto';
import { decodeStrict } from './b64';
import { badRequest, invalidCredentials } from './errors';
import { isRoleName } from './names';
import type { CallerIdentity, SignedStsRequest } from '../ports';

export const SERVER_ID_HEADER = 'x-dssss-server-id';
/** A GetCallerIdentity body is ~43 bytes; anything much larger is not one. */
const MAX_BODY_BYTES = 1024;
const MAX_HEADERS = 20;
const MAX_HEADER_CHARS = 4096;
const EXPECTED_BODY = new Map([
  ['Action', 'GetCallerIdentity'],
  ['Version', '2011-06-15'],
]);

export type Partition = 'aws' | 'aws-cn' | 'aws-us-gov';

export interface IamLoginConfig {
  /** The value clients must sign into X-Dssss-Server-Id. */
  readonly serverId: string;
  readonly partition: Partition;
  /** An extra STS endpoint (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL), e.g. an emulator in tests. */
  readonly stsEndpoint?: string | undefined;
}

const REGION = '[a-z]{2}(?:-[a-z]+)+-\\d{1,2}';
const STS_HOSTS: Readonly<Record<Partition, RegExp>> = {
  aws: new RegExp(`^sts(?:\\.${REGION})?\\.amazonaws\\.com$`),
  'aws-cn': new RegExp(`^sts\\.cn-[a-z]+-\\d{1,2}\\.amazonaws\\.com\\.cn$`),
  'aws-us-gov': new RegExp(`^sts(?:\\.us-gov-[a-z]+-\\d{1,2})?\\.amazonaws\\.com$`),
};

export const IAM_LOGIN_SHAPE = 'body must be JSON {"method": "POST", "url": "<STS endpoint>", "headers": {...}, "body": "<base64>"}';
const shape = (why: string) => badRequest(`${IAM_LOGIN_SHAPE}: ${why}`);

/**
 * Checks a client's login request and returns what may be forwarded. Everything that is not
 * a GetCallerIdentity call to an STS endpoint, signed with this server's id, is a 400, and
 * nothing is sent.
 */
export function parseIamLoginRequest(input: unknown, config: IamLoginConfig): SignedStsRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw shape('not an object');
  const { method, url, headers, body, ...rest } = input as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw shape('unexpected field');
  if (method !== 'POST') throw badRequest('method must be POST');
  if (typeof url !== 'string' || typeof body !== 'string') throw shape('url and body must be strings');
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw shape('headers must be an object');

  const target = stsUrl(url, config);

  const bodyBytes = decodeStrict(body, 'base64');
  if (bodyBytes === undefined) throw badRequest('body must be base64');
  if (bodyBytes.length > MAX_BODY_BYTES) throw badRequest('body is not a GetCallerIdentity request');
  const form = Buffer.from(bodyBytes).toString('utf8');
  assertGetCallerIdentity(form);

  const lower = normaliseHeaders(headers as Record<string, unknown>);
  const contentType = lower.get('content-type');
  if (contentType === undefined || !/^application\/x-www-form-urlencoded(\s*;\s*charset=utf-8)?$/i.test(contentType)) {
    throw badRequest('content-type must be application/x-www-form-urlencoded');
  }
  const signed = signedHeaders(lower.get('authorization'));
  if (!signed.has(SERVER_ID_HEADER)) throw badRequest(`the signature must cover the ${SERVER_ID_HEADER} header`);
  if (!signed.has('host')) throw badRequest('the signature must cover the host header');
  const serverId = lower.get(SERVER_ID_HEADER);
  if (serverId === undefined || !constantTimeEqual(serverId, config.serverId)) {
    throw badRequest(`${SERVER_ID_HEADER} does not name this server`);
  }
  const host = lower.get('host');
  if (host !== undefined && host.toLowerCase() !== target.host) throw badRequest('the host header does not match the url');

  // The transport sets host and content-length from the url and body themselves.
  const forwarded: Record<string, string> = {};
  for (const [name, value] of lower) if (name !== 'host' && name !== 'content-length') forwarded[name] = value;
  return { url: target.href, headers: forwarded, body: form };
}

function stsUrl(raw: string, config: IamLoginConfig): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest('url is not a URL');
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '' || url.search !== '') {
    throw badRequest('url must be an STS endpoint with no query, fragment or credentials');
  }
  if (config.stsEndpoint !== undefined) {
    const endpoint = new URL(config.stsEndpoint);
    if (url.origin === endpoint.origin && url.pathname === endpoint.pathname) return url;
  }
  if (url.protocol !== 'https:') throw badRequest('url must use https');
  if (url.port !== '') throw badRequest('url must use the default port');
  if (url.pathname !== '/') throw badRequest('url path must be /');
  if (!STS_HOSTS[config.partition].test(url.hostname)) throw badRequest(`url host is not an STS endpoint of partition ${config.partition}`);
  return url;
}

function assertGetCallerIdentity(form: string): void {
  const params = new URLSearchParams(form);
  const keys = [...params.keys()];
  const ok =
    keys.length === EXPECTED_BODY.size &&
    new Set(keys).size === keys.length &&
    [...EXPECTED_BODY].every(([key, value]) => params.get(key) === value);
  if (!ok) throw badRequest('only sts:GetCallerIdentity (Action=GetCallerIdentity&Version=2011-06-15) is accepted');
}

function normaliseHeaders(headers: Record<string, unknown>): Map<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > MAX_HEADERS) throw badRequest(`at most ${MAX_HEADERS} headers`);
  const out = new Map<string, string>();
  for (const [name, value] of entries) {
    if (typeof value !== 'string') throw shape('header values must be strings');
    const key = name.toLowerCase();
    // A header name or value that would not survive HTTP unchanged cannot have been signed as sent.
    if (!/^[a-z0-9-]{1,64}$/.test(key) || value.length > MAX_HEADER_CHARS || /[\r\n\0]/.test(value)) {
      throw badRequest('malformed header');
    }
    if (out.has(key)) throw badRequest('duplicate header');
    out.set(key, value);
  }
  return out;
}

function signedHeaders(authorization: string | undefined): Set<string> {
  const match = authorization === undefined ? null : /^AWS4-HMAC-SHA256 .*SignedHeaders=([a-z0-9;-]+)/.exec(authorization);
  if (!match) throw badRequest('authorization must be an AWS Signature Version 4 header');
  return new Set(match[1]!.split(';'));
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface IamPrincipal {
  readonly role: string;
  readonly account: string;
  /** The assumed-role session name, or the IAM user name. */
  readonly principal: string;
}

/**
 * `arn:<partition>:sts::<account>:assumed-role/<role>/<session>` -> role. IAM users only when
 * named in `iamUsers` (they act as the role of the same name); every other kind is refused.
 */
export function principalFromArn(identity: CallerIdentity, partition: Partition, iamUsers: readonly string[]): IamPrincipal {
  const parts = identity.arn.split(':');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[1] !== partition || parts[4] !== identity.account || !/^\d{12}$/.test(identity.account)) {
    throw invalidCredentials('STS returned an identity this server does not accept');
  }
  const [service, resource] = [parts[2], parts[5]!];
  const assumed = /^assumed-role\/([^/]+)\/([^/]+)$/.exec(resource);
  if (service === 'sts' && assumed && isRoleName(assumed[1]!)) {
    return { role: assumed[1]!, account: identity.account, principal: `${assumed[1]}/${assumed[2]}` };
  }
  const user = /^user\/(?:[^/]+\/)*([^/]+)$/.exec(resource);
  if (service === 'iam' && user && isRoleName(user[1]!)) {
    if (!iamUsers.includes(user[1]!)) throw invalidCredentials('IAM users may not log in here; use a role');
    return { role: user[1]!, account: identity.account, principal: `user/${user[1]}` };
  }
  throw invalidCredentials('only IAM roles (assumed-role sessions) may log in');
}
