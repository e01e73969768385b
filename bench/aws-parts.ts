// The parts the aws suite's figures are made of, each measured beside what it replaced, in
// the same run: an AWS call through the SDK client (with and without cacheMiddleware) or
// through the plain signed request the EC2 and IAM clients now make, against a loopback
// server that answers at once; and, in a fresh `node` each time, what a cold container's
// first login used to pay: its first fetch() (now node:http), and every bundled AWS
// certificate parsed (now the one a document names).

import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { awsClientOptions } from '../lambda/adapters/aws-client';
import { AwsQueryClient } from '../lambda/adapters/aws-query';
import { KeepAliveAgents, post } from '../lambda/adapters/http-post';
import { signedPostHeaders, signerFor } from '../lambda/adapters/sigv4';
import { PROJECT_ROOT } from './bundle';
import { median } from './measure';

const ROUNDS = 7;
const CALLS_PER_ROUND = 200;
const FRESH_RUNS = 7;

export interface PartFigure {
  readonly id: string;
  readonly what: string;
  /** Median of the rounds' medians: µs per call, or ms for a fresh process's one-off cost. */
  readonly value: number;
  readonly unit: 'us' | 'ms';
}

const credentials = { accessKeyId: 'AKIDBENCHMARKONLY', secretAccessKey: 'bench-secret-not-a-real-key' };
const PARAMETER = JSON.stringify({ Parameter: { Name: '/dssss/secrets/bench/get', Type: 'String', Value: 'r'.repeat(600), Version: 7, ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/dssss/secrets/bench/get' } });
const INSTANCE = `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item><instanceId>i-0123456789abcdef0</instanceId><instanceState><code>16</code><name>running</name></instanceState><iamInstanceProfile><arn>arn:aws:iam::123456789012:instance-profile/web-profile</arn><id>AIPAEXAMPLE</id></iamInstanceProfile></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`;

export async function runAwsParts(log: (line: string) => void): Promise<PartFigure[]> {
  const server = await answering();
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = new URL(endpoint);
  const sdk = { endpoint, region: 'us-east-1', credentials };
  const ssmCached = new SSMClient({ ...sdk, ...awsClientOptions() });
  const ssmUncached = new SSMClient({ ...sdk, ...awsClientOptions(), cacheMiddleware: false });
  const ec2Sdk = new EC2Client({ ...sdk, ...awsClientOptions() });
  const ec2Query = new AwsQueryClient({ service: 'ec2', region: async () => 'us-east-1', credentials: async () => credentials, env: { AWS_ENDPOINT_URL: endpoint } });
  const agents = new KeepAliveAgents();
  const signer = signerFor(credentials, 'us-east-1', 'ssm');
  const plainGetParameter = async () => {
    const body = JSON.stringify({ Name: '/dssss/secrets/bench/get' });
    const headers = await signedPostHeaders(signer, url, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.GetParameter' }, body);
    const { text } = await post(url, headers, body, agents, { connectionTimeoutMs: 1000, requestTimeoutMs: 2000, maxResponseBytes: 1 << 20, what: 'SSM' });
    return JSON.parse(text) as unknown;
  };
  const calls: [string, string, () => Promise<unknown>][] = [
    ['ssm-sdk', 'SSM GetParameter, SDK client as the server builds it (cacheMiddleware on)', () => ssmCached.send(new GetParameterCommand({ Name: '/dssss/secrets/bench/get' }))],
    ['ssm-sdk-uncached', 'SSM GetParameter, SDK client without cacheMiddleware (as before)', () => ssmUncached.send(new GetParameterCommand({ Name: '/dssss/secrets/bench/get' }))],
    ['ssm-plain', 'SSM GetParameter as a plain signed request (SigV4 + node:http, as the EC2/IAM clients do)', plainGetParameter],
    ['ec2-sdk', 'EC2 DescribeInstances, @aws-sdk/client-ec2 (as before)', () => ec2Sdk.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] }))],
    ['ec2-query', 'EC2 DescribeInstances, the query client the server uses now', () => ec2Query.call('DescribeInstances', { 'InstanceId.1': 'i-0123456789abcdef0' })],
  ];
  try {
    const rounds = new Map<string, number[]>(calls.map(([id]) => [id, []]));
    // Round 0 warms every client up (JIT, first-call set-up) and is thrown away.
    for (let round = 0; round <= ROUNDS; round++) {
      for (let k = 0; k < calls.length; k++) {
        const [id, , call] = calls[(k + round) % calls.length]!;
        const micros: number[] = [];
        for (let i = 0; i < CALLS_PER_ROUND; i++) {
          const t0 = performance.now();
          await call();
          micros.push((performance.now() - t0) * 1000);
        }
        if (round > 0) rounds.get(id)!.push(median(micros));
      }
    }
    const figures: PartFigure[] = calls.map(([id, what]) => ({ id, what, value: median(rounds.get(id)!), unit: 'us' }));
    figures.push(...freshProcessParts());
    for (const f of figures) log(`  ${f.what}: ${f.value.toFixed(f.unit === 'us' ? 0 : 1)} ${f.unit === 'us' ? 'µs a call' : 'ms'}`);
    return figures;
  } finally {
    for (const client of [ssmCached, ssmUncached, ec2Sdk]) client.destroy();
    ec2Query.destroy();
    agents.destroy();
    server.closeAllConnections();
    server.close();
  }
}

/** A loopback server that answers each protocol's request at once: what the calls cost the caller. */
async function answering(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const json = req.headers['x-amz-target'] !== undefined;
      const body = json ? PARAMETER : INSTANCE;
      res.writeHead(200, { 'Content-Type': json ? 'application/x-amz-json-1.1' : 'text/xml;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** One-off costs of a cold container's first login, each in a fresh `node` that prints the time it took. */
function freshProcessParts(): PartFigure[] {
  const firstPost = (how: 'fetch' | 'http') => `
    import { createServer, request } from 'node:http';
    const server = createServer((q, s) => { q.resume(); q.on('end', () => s.end('<GetCallerIdentityResponse/>')); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const url = 'http://127.0.0.1:' + server.address().port + '/';
    const t0 = performance.now();
    ${
      how === 'fetch'
        ? `const r = await fetch(url, { method: 'POST', body: 'Action=GetCallerIdentity', redirect: 'manual', signal: AbortSignal.timeout(5000) }); await r.text();`
        : `await new Promise((done) => { const q = request(url, { method: 'POST', headers: { 'content-length': '23' } }, (r) => { r.resume(); r.on('end', done); }); q.end('Action=GetCallerIdentity'); });`
    }
    console.log(performance.now() - t0);
    server.close();`;
  const certs = (how: 'all' | 'one') => `
    const bundled = (await import('./lambda/identity/aws-certs.json', { with: { type: 'json' } })).default;
    const { TrustStore, awsTrustStore, certificateIssuerAndSerial } = await import('./lambda/identity/certs.ts');
    const pems = [...Object.values(bundled.pkcs7), ...Object.values(bundled.rsa2048)];
    const der = Buffer.from(bundled.rsa2048['us-east-1'].replace(/-----[A-Z ]+-----|\\s/g, ''), 'base64');
    const signer = certificateIssuerAndSerial(der);
    const t0 = performance.now();
    ${how === 'all' ? 'TrustStore.fromPems(pems).candidates(signer);' : 'awsTrustStore().candidates(signer);'}
    console.log(performance.now() - t0);`;
  const parts: [string, string, string[], string][] = [
    ['first-fetch', "A fresh node's first POST with fetch() (how STS was called)", ['--input-type=module', '-e'], firstPost('fetch')],
    ['first-http', "A fresh node's first POST with node:http (how STS, EC2 and IAM are called now)", ['--input-type=module', '-e'], firstPost('http')],
    ['certs-all', "AWS's bundled certificates all parsed, then the signer looked up (as before)", ['--import', 'tsx', '--input-type=module', '-e'], certs('all')],
    ['certs-one', 'The signer looked up, only its certificate parsed (now)', ['--import', 'tsx', '--input-type=module', '-e'], certs('one')],
  ];
  const runs = new Map<string, number[]>(parts.map(([id]) => [id, []]));
  for (let i = 0; i < FRESH_RUNS; i++) {
    for (const [id, , args, code] of parts) {
      const child = spawnSync(process.execPath, [...args, code], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 30_000 });
      const ms = Number(child.stdout.trim().split('\n').at(-1));
      if (child.status !== 0 || !Number.isFinite(ms)) throw new Error(`aws parts: ${id} failed: ${child.stderr.slice(-500)}`);
      runs.get(id)!.push(ms);
    }
  }
  return parts.map(([id, what]) => ({ id, what, value: median(runs.get(id)!), unit: 'ms' as const }));
}
