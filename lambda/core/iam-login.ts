// IAM login: a client signs sts:GetCallerIdentity with its own credentials and sends us the
// signed request; we forward it to STS, whose answer names the caller. This module decides
// what may be forwarded (only GetCallerIdentity, only to STS, only if signed for this
// server) and what the answer means. It sends nothing itself.

import { timingSafeEqual } from 'node:crypto';
import { decodeStrict } from './b64';
import { badRequest, invalidCredentials } from './errors';
import { isRoleName } from './roles';
import type { CallerIdentity, SignedStsRequest } from '../ports';

export const SERVER_ID_HEADER = 'x-dssss-server-id';
const MAX_HEADERS = 20;
const MAX_HEADER_CHARS = 4096;
/** The one body accepted, byte for byte: every SDK encodes GetCallerIdentity this way. */
export const GET_CALLER_IDENTITY_BODY = 'Action=GetCallerIdentity&Version=2011-06-15';
/**
 * The headers a signed GetCallerIdentity may carry, and so the only ones forwarded: nothing
 * else can change what STS does or how the request travels. host (checked against the url)
 * and content-length are set by the transport.
 */
const FORWARDED_HEADERS = new Set([
  'authorization',
  'content-type',
  'x-amz-date',
  'x-amz-security-token',
  'x-amz-content-sha256',
  SERVER_ID_HEADER,
  'amz-sdk-invocation-id',
  'amz-sdk-request',
  'x-amz-user-agent',
  'user-agent',
]);
const TRANSPORT_HEADERS = new Set(['host', 'content-length']);
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=[A-Za-z0-9]{1,128}\/\d{8}\/[a-z0-9-]{1,32}\/sts\/aws4_request, ?SignedHeaders=([a-z0-9;-]{1,1024}), ?Signature=[0-9a-f]{64}$/;

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
  const form = Buffer.from(bodyBytes).toString('utf8');
  if (form !== GET_CALLER_IDENTITY_BODY) throw badRequest(`only sts:GetCallerIdentity (${GET_CALLER_IDENTITY_BODY}) is accepted`);

  const lower = normaliseHeaders(headers as Record<string, unknown>);
  const contentType = lower.get('content-type');
  if (contentType === undefined || !/^application\/x-www-form-urlencoded(\s*;\s*charset=utf-8)?$/i.test(contentType)) {
    throw badRequest('content-type must be application/x-www-form-urlencoded');
  }
  for (const name of lower.keys()) {
    if (!FORWARDED_HEADERS.has(name) && !TRANSPORT_HEADERS.has(name)) throw badRequest(`header ${name} is not accepted`);
  }
  const signed = signedHeaders(lower.get('authorization'));
  for (const name of signed) {
    if (!lower.has(name)) throw badRequest(`signed header ${name} is missing`);
  }
  if (!signed.has(SERVER_ID_HEADER)) throw badRequest(`the signature must cover the ${SERVER_ID_HEADER} header`);
  if (!signed.has('host')) throw badRequest('the signature must cover the host header');
  const serverId = lower.get(SERVER_ID_HEADER);
  if (serverId === undefined || !constantTimeEqual(serverId, config.serverId)) {
    throw badRequest(`${SERVER_ID_HEADER} does not name this server`);
  }
  const host = lower.get('host');
  if (host !== undefined && host.toLowerCase() !== target.host) throw badRequest('the host header does not match the url');

  const forwarded: Record<string, string> = {};
  for (const [name, value] of lower) if (FORWARDED_HEADERS.has(name)) forwarded[name] = value;
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
  // Strict, whole-header: a second SignedHeaders= appended after the signature must not be the one read.
  const match = authorization === undefined ? null : AUTHORIZATION.exec(authorization);
  if (!match) throw badRequest('authorization must be one AWS Signature Version 4 header for sts');
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
  /** The role's unique id, from STS's UserId (`AROA...:session`). */
  readonly roleId?: string | undefined;
  /** role/session, or user/name. */
  readonly principal: string;
  /** The assumed-role session name: an instance id when these are an EC2 instance's role credentials. */
  readonly session?: string | undefined;
}

/**
 * `arn:<partition>:sts::<account>:assumed-role/<role>/<session>` -> role. IAM users only when
 * named in `iamUsers` (they act as the role of the same name); every other kind is refused.
 */
export function principalFromArn(identity: CallerIdentity, partition: Partition, iamUsers: readonly string[]): IamPrincipal {
  const parts = identity.arn.split(':');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[1] !== partition || parts[4] !== identity.account || !/^\d{12}$/.test(identity.account)) {
    throw invalidCredentials('STS returned an identity this server does not accept', 'sts_identity_refused');
  }
  const [service, resource] = [parts[2], parts[5]!];
  const assumed = /^assumed-role\/([^/]+)\/([^/]+)$/.exec(resource);
  if (service === 'sts' && assumed && isRoleName(assumed[1]!)) {
    // UserId is "<role id>:<session>"; the id is what tells a recreated role from the old one.
    const roleId = /^(AROA[A-Z0-9]{8,128}):(.+)$/.exec(identity.userId ?? '');
    return {
      role: assumed[1]!,
      account: identity.account,
      roleId: roleId && roleId[2] === assumed[2] ? roleId[1] : undefined,
      principal: `${assumed[1]}/${assumed[2]}`,
      session: assumed[2],
    };
  }
  const user = /^user\/(?:[^/]+\/)*([^/]+)$/.exec(resource);
  if (service === 'iam' && user && isRoleName(user[1]!)) {
    if (!iamUsers.includes(user[1]!)) throw invalidCredentials('IAM users may not log in here; use a role', 'iam_user');
    return { role: user[1]!, account: identity.account, principal: `user/${user[1]}` };
  }
  throw invalidCredentials('only IAM roles (assumed-role sessions) may log in', 'not_a_role');
}
