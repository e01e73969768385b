// Global setup for `npm run test:aws`: moto_server (the moto AWS emulator) on a free
// loopback port, and the SDK pointed at it through AWS_ENDPOINT_URL. Nothing leaves 127.0.0.1.
// `startMotoServer` is shared with the benchmark (bench/aws-server.ts).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { XMLParser } from 'fast-xml-parser';
import type { TestProject } from 'vitest/node';
import { signedPostHeaders, signerFor } from '../../lambda/adapters/sigv4';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface MotoServer {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  stop(): void;
}

/** moto_server on a free 127.0.0.1 port, once it answers; `env` adds to its environment (e.g. the recorder's file). */
export async function startMotoServer(env: Readonly<Record<string, string>> = {}): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore', env: { ...process.env, ...env } });
  const failed = new Promise<never>((_, reject) => {
    moto.on('error', (err) => reject(new Error(`moto_server did not start (pip install 'moto[server]'): ${err.message}`)));
    moto.on('exit', (code) => reject(new Error(`moto_server exited with ${code}`)));
  });
  failed.catch(() => undefined); // observed by the race below; later exits are the caller's business
  const stop = () => {
    if (moto.exitCode === null && moto.signalCode === null) moto.kill('SIGTERM');
  };
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      const up = await Promise.race([fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false), failed]);
      if (up) break;
      if (Date.now() > deadline) throw new Error('moto_server did not answer within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    stop();
    throw err;
  }
  return { endpoint, stop };
}

export default async function setup(project: TestProject): Promise<() => void> {
  const moto = await startMotoServer();
  project.provide('awsEndpoint', moto.endpoint);
  return () => moto.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

/** The bookkeeping table as the stack creates it (partition key `k`, on demand), in moto. */
export async function createBookkeepingTable(dynamo: DynamoDBClient, name: string): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
}

export interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

/** sts:AssumeRole against moto (as `credentials`), signed like any SDK call: a role session named `session`. */
export async function assumeRoleOnMoto(
  endpoint: string,
  account: string,
  role: string,
  session: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<SessionCredentials> {
  const url = new URL(`${endpoint}/`);
  const body = new URLSearchParams({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: `arn:aws:iam::${account}:role/${role}`, RoleSessionName: session }).toString();
  const headers = await signedPostHeaders(signerFor(credentials, 'us-east-1', 'sts'), url, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body);
  const response = await fetch(url, { method: 'POST', headers, body });
  if (response.status !== 200) throw new Error(`moto: AssumeRole answered ${response.status}`);
  const xml = new XMLParser().parse(await response.text()) as {
    AssumeRoleResponse: { AssumeRoleResult: { Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string } } };
  };
  const c = xml.AssumeRoleResponse.AssumeRoleResult.Credentials;
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}
