// IMDSv2 and STS as the client meets them, on loopback: enough of each for the client's
// logins. IMDS serves a session token, the identity document and (when the instance has a
// role) the role's credentials, under an optional path prefix as a fleet simulation mounts
// many instances on one port; STS answers GetCallerIdentity for the access key that signed
// (it does not check signatures; the real one does). Nothing here leaves 127.0.0.1.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const IMDS_SESSION = 'imds-session-token';
/** The access key IMDS hands out as the instance role's: STS answers it as `assumed-role/<role>/<instance id>`. */
export const INSTANCE_ROLE_KEY = 'ASIAINSTANCEROLEKEY1';

export function listen(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, res, body));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

export interface ImdsStandIn {
  url: string;
  server: Server;
  /** The identity document served (PEM-ish: 64-character lines, as EC2 serves it). */
  document: string;
  /** The instance's role; undefined: no role attached (the credentials listing is a 404). */
  role: string | undefined;
  instanceId: string;
  /** The next this-many requests answer 500. */
  failures: number;
  /** Every request: method and path. */
  readonly requests: string[];
}

export async function startImds(prefix = ''): Promise<ImdsStandIn> {
  const imds = { document: '', role: undefined as string | undefined, instanceId: 'i-0123456789abcdef0', failures: 0, requests: [] as string[] } as ImdsStandIn;
  const { server, url } = await listen((req, res) => {
    imds.requests.push(`${req.method} ${req.url}`);
    const path = req.url?.startsWith(`${prefix}/`) ? req.url.slice(prefix.length) : undefined;
    if (imds.failures > 0) {
      imds.failures--;
      res.writeHead(500).end();
    } else if (path === undefined) {
      res.writeHead(404).end();
    } else if (req.method === 'PUT' && path === '/latest/api/token' && req.headers['x-aws-ec2-metadata-token-ttl-seconds']) {
      res.end(IMDS_SESSION);
    } else if (req.headers['x-aws-ec2-metadata-token'] !== IMDS_SESSION) {
      res.writeHead(401).end();
    } else if (path === '/latest/dynamic/instance-identity/rsa2048') {
      res.end(imds.document.replace(/(.{64})/g, '$1\n'));
    } else if (path === '/latest/meta-data/iam/security-credentials/') {
      if (imds.role === undefined) res.writeHead(404).end();
      else res.end(imds.role);
    } else if (imds.role !== undefined && path === `/latest/meta-data/iam/security-credentials/${imds.role}`) {
      res.end(
        JSON.stringify({
          Code: 'Success',
          Type: 'AWS-HMAC',
          AccessKeyId: INSTANCE_ROLE_KEY,
          SecretAccessKey: 'instance-role-secret',
          Token: 'instance-role-session-token',
          Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
        }),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  return Object.assign(imds, { server, url: `${url}${prefix}` });
}

export interface StsStandIn {
  url: string;
  server: Server;
  /** The role and account of any key but the instance role's. */
  role: string;
  account: string;
  hits: number;
  /** The access key of each request. */
  readonly keys: string[];
}

/** `instance`: who the instance role's key is (its account, role and instance id). */
export async function startSts(instance: () => { account: string; role: string | undefined; instanceId: string }): Promise<StsStandIn> {
  const sts = { role: 'worker', account: '123456789012', hits: 0, keys: [] as string[] } as StsStandIn;
  const { server, url } = await listen((req, res) => {
    sts.hits++;
    const key = /Credential=([A-Z0-9]+)\//.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
    sts.keys.push(key);
    const who = key === INSTANCE_ROLE_KEY ? instance() : undefined;
    const arn = who ? `arn:aws:sts::${who.account}:assumed-role/${who.role}/${who.instanceId}` : `arn:aws:sts::${sts.account}:assumed-role/${sts.role}/task`;
    res.writeHead(200, { 'Content-Type': 'text/xml' }).end(
      `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>${arn}</Arn>` +
        `<Account>${who?.account ?? sts.account}</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`,
    );
  });
  return Object.assign(sts, { server, url });
}
