// The instance metadata service of every instance in the stand-in's world, IMDSv2 only: a
// token from PUT /latest/api/token (with its TTL header), then GETs that carry it; without
// one, 401. Serves the identity document (plain and `rsa2048`, signed by the test's CA), the
// instance id, region, and the instance role's name and credentials (404 on an instance with
// no profile attached, as IMDS answers there). aws-wire.ts routes `/<instance-id>/latest/...`
// here, so one server stands in for thousands of instances. A fault hook makes an instance's
// next N requests (of one path, if given) slow, 4xx/5xx or refused; each instance's requests
// are counted and, unless the stand-in keeps no call log, logged.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import type { InstanceRecord, StandInCredentials } from './aws-world';

/** slow: answer after `delayMs`; error: answer `status` (default 500); refuse: reset the connection. */
export interface ImdsFault {
  readonly kind: 'slow' | 'error' | 'refuse';
  /** How many of the instance's next requests it hits. */
  readonly count: number;
  readonly delayMs?: number;
  readonly status?: number;
  /** Only requests for this path (what follows the instance's base URL: `/latest/...`) are hit and counted; default: any. */
  readonly path?: string;
}

export interface ImdsSource {
  instance(instanceId: string): InstanceRecord | undefined;
  credentials(accessKeyId: string): StandInCredentials | undefined;
  profileId(profileArn: string): string | undefined;
  ca(): DevCa;
}

const MAX_TTL_SECONDS = 21_600;
/** Past this many live tokens, expired ones are forgotten (a long simulation asks for many). */
const MAX_TOKENS = 50_000;
/** No fault waits longer than this: a test's mistake must not hang the suite. */
const MAX_DELAY_MS = 10_000;

/** The identity document of an instance, as IMDS serves it. */
export function identityDocument(instanceId: string, instance: InstanceRecord): Record<string, unknown> {
  return {
    accountId: instance.owner,
    architecture: 'x86_64',
    availabilityZone: `${instance.region}a`,
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: 'ami-0123456789abcdef0',
    instanceId,
    instanceType: 't3.micro',
    kernelId: null,
    pendingTime: instance.launched,
    privateIp: '10.0.0.10',
    ramdiskId: null,
    region: instance.region,
    version: '2017-09-30',
  };
}

export class Imds {
  private readonly tokens = new Map<string, { instanceId: string; expires: number }>();
  private readonly faults = new Map<string, { fault: ImdsFault; remaining: number }>();
  private readonly requestCounts = new Map<string, number>();
  private readonly requestLogs = new Map<string, string[]>();
  /** The rsa2048 signature of each document served, since an RSA signature costs a millisecond or two. */
  private readonly signed = new Map<string, string>();

  /** `log`: keep each request's method and path (`requestLog`); a long simulation may not want them. */
  constructor(
    private readonly source: ImdsSource,
    private readonly log = true,
  ) {}

  fault(instanceId: string, fault: ImdsFault | undefined): void {
    if (fault === undefined) this.faults.delete(instanceId);
    else this.faults.set(instanceId, { fault, remaining: fault.count });
  }

  /** Requests an instance's IMDS has received, faulted ones included. */
  requests(instanceId: string): number {
    return this.requestCounts.get(instanceId) ?? 0;
  }

  /** Those requests as `METHOD /latest/...` (the path after the instance's base URL), oldest first; empty without the log. */
  requestLog(instanceId: string): string[] {
    return [...(this.requestLogs.get(instanceId) ?? [])];
  }

  /** The rsa2048 document, base64 in lines of 64 as IMDS serves it. */
  signedDocument(instanceId: string): string {
    const instance = this.source.instance(instanceId);
    if (!instance) throw new Error(`no instance ${instanceId}`);
    const document = identityDocument(instanceId, instance);
    const key = JSON.stringify(document);
    let signed = this.signed.get(key);
    if (signed === undefined) {
      signed = signIdentityDocument(document, this.source.ca()).replace(/(.{64})/g, '$1\n').trim();
      this.signed.set(key, signed);
    }
    return signed;
  }

  private forgetExpiredTokens(): void {
    const now = Date.now();
    for (const [token, session] of this.tokens) if (session.expires < now) this.tokens.delete(token);
  }

  /** One request for `instanceId`'s IMDS; `path` is what follows the instance's base URL. */
  async serve(instanceId: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requestCounts.set(instanceId, this.requests(instanceId) + 1);
    if (this.log) {
      const log = this.requestLogs.get(instanceId) ?? [];
      log.push(`${req.method} ${path}`);
      this.requestLogs.set(instanceId, log);
    }
    const pending = this.faults.get(instanceId);
    if (pending && pending.remaining > 0 && (pending.fault.path === undefined || pending.fault.path === path)) {
      pending.remaining--;
      const { fault } = pending;
      if (fault.kind === 'refuse') {
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'error') return text(res, fault.status ?? 500, 'Internal Server Error');
      await new Promise((resolve) => setTimeout(resolve, Math.min(fault.delayMs ?? 2000, MAX_DELAY_MS)));
      if (res.destroyed) return; // the client gave up waiting
    }
    const instance = this.source.instance(instanceId);
    if (!instance) return text(res, 404, 'Not Found');

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return text(res, 405, 'Method Not Allowed');
      // IMDS refuses a token request that came through a proxy.
      if (req.headers['x-forwarded-for'] !== undefined) return text(res, 403, 'Forbidden');
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) return text(res, 400, 'Bad Request');
      const token = randomBytes(42).toString('base64url');
      if (this.tokens.size >= MAX_TOKENS) this.forgetExpiredTokens();
      this.tokens.set(token, { instanceId, expires: Date.now() + ttl * 1000 });
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
      return text(res, 200, token);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'Method Not Allowed');
    const session = this.tokens.get(String(req.headers['x-aws-ec2-metadata-token'] ?? ''));
    if (!session || session.instanceId !== instanceId || session.expires < Date.now()) return text(res, 401, 'Unauthorized');

    const profile = instance.profile;
    const credentials = profile && this.source.credentials(profile.accessKeyId);
    const rolePath = '/latest/meta-data/iam/security-credentials/';
    switch (path) {
      case '/latest/dynamic/instance-identity/document':
        return text(res, 200, JSON.stringify(identityDocument(instanceId, instance), null, 2), 'application/json');
      case '/latest/dynamic/instance-identity/rsa2048':
        return text(res, 200, this.signedDocument(instanceId));
      case '/latest/meta-data/instance-id':
        return text(res, 200, instanceId);
      case '/latest/meta-data/placement/region':
        return text(res, 200, instance.region);
      case '/latest/meta-data/iam/info':
        if (!profile) return text(res, 404, 'Not Found');
        return text(res, 200, JSON.stringify({ Code: 'Success', LastUpdated: instance.launched, InstanceProfileArn: profile.arn, InstanceProfileId: this.source.profileId(profile.arn) }), 'application/json');
      case rolePath:
        return profile && credentials ? text(res, 200, profile.role) : text(res, 404, 'Not Found');
    }
    if (profile && credentials && path === rolePath + profile.role) {
      return text(
        res,
        200,
        JSON.stringify({
          Code: 'Success',
          LastUpdated: instance.launched,
          Type: 'AWS-HMAC',
          AccessKeyId: credentials.accessKeyId,
          SecretAccessKey: credentials.secretAccessKey,
          Token: credentials.sessionToken,
          Expiration: credentials.expiration?.toISOString().replace(/\.\d+Z$/, 'Z'),
        }),
        'application/json',
      );
    }
    return text(res, 404, 'Not Found');
  }
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
