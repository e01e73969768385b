// Cold start: the Lambda artifact, built as the CDK stack builds it, imported by a fresh
// `node` that serves one request (bench/cold-start-child.mjs). A token-authenticated GET,
// twice over: on the local backends (a data dir prepared beforehand), and on the AWS backends
// against Parameter Store and KMS stand-ins on 127.0.0.1, so the SDK clients load as in
// Lambda. Then the first login of a container, EC2 and IAM, on the AWS backends against
// moto_server on 127.0.0.1 (EC2, IAM, STS and DynamoDB over the wire; the fake-aws stand-in
// serves Parameter Store and KMS only), configured as the stack configures the function.
// Last, the local server's own start (bench/server-start.ts).

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { awsFixture } from './aws-fixture';
import { serveLoopbackAws, type LoopbackAws } from '../test/support/fake-aws';
import { buildLambdaArtifact, PROJECT_ROOT, type Artifact } from './bundle';
import { localFixture } from './local-fixture';
import { median } from './measure';
import { describeRequest, motoAccount, type MotoAccount } from './moto-fixture';
import { runServerStart, type ServerStartResult } from './server-start';
import { restEvent } from '../test/rest-event';

export const COLD_RUNS = 15;
const CHILD = fileURLToPath(new URL('./cold-start-child.mjs', import.meta.url));
const SECRET_NAME = 'bench/cold';
const SECRET_VALUE = 'cold-start-value';

export interface Spread {
  readonly median: number;
  readonly max: number;
  readonly min: number;
}

export type ColdStartId = 'local' | 'aws' | 'login-ec2' | 'login-iam';

export interface ColdStartFigure {
  readonly id: ColdStartId;
  readonly backend: string;
  readonly runs: number;
  /** Import of the artifact plus its first request: the figure the target is about. */
  readonly importAndFirstRequestMs: Spread;
  readonly importMs: Spread;
  readonly firstRequestMs: Spread;
  /** Node's own boot, then import and first request: what a process start costs in all. */
  readonly processStartToResponseMs: Spread;
  /** AWS requests one cold start made, as the stand-in server saw them (aws only). */
  readonly awsRequestsPerColdStart?: Readonly<Record<string, number>>;
  /** The AWS requests a cold login made, as moto received them (logins only). */
  readonly awsRequests?: readonly string[];
  readonly machine: string;
}

export interface ColdStartResult {
  readonly artifact: Omit<Artifact, 'file'>;
  readonly figures: readonly ColdStartFigure[];
  /** The local server: `npm start` to its first answer. */
  readonly serverStart: ServerStartResult;
}

interface ChildReport {
  bootMs: number;
  importMs: number;
  firstRequestMs: number;
  statusCode: number;
  body: string;
}

export async function runColdStart(machine: string, log: (line: string) => void): Promise<ColdStartResult> {
  const work = await mkdtemp(join(tmpdir(), 'dssss-bench-cold-'));
  const local = await localFixture('cold');
  let loopback: LoopbackAws | undefined;
  let account: MotoAccount | undefined;
  try {
    const artifact = await buildLambdaArtifact(work);
    log(
      `  artifact: ${artifact.bytes.toLocaleString('en-US')} bytes minified in ${artifact.files} files (${artifact.gzipBytes.toLocaleString('en-US')} gzipped), ` +
        `${artifact.eagerBytes.toLocaleString('en-US')} loaded by a cold GET, built in ${artifact.buildSeconds.toFixed(1)} s`,
    );
    const artifactUrl = pathToFileURL(artifact.file).href;
    // A bare environment: nothing from this shell (AWS profiles, NODE_OPTIONS) reaches the child.
    const home = join(work, 'home');
    const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none') };

    // Local backends: a secret stored and a token minted beforehand, in the data dir.
    const localToken = await local.login('web');
    await local.put(localToken, SECRET_NAME, SECRET_VALUE, ['web']);
    const localEvent = join(work, 'local-event.json');
    await writeFile(localEvent, JSON.stringify(restEvent('GET', `/v1/secret/${SECRET_NAME}`, { Reauthentication: localToken })));
    const localEnv = { ...baseEnv, DSSSS_BACKEND: 'local', DSSSS_DATA_DIR: local.dir };

    // AWS backends: a deployment whose seal key and secret were written by an earlier
    // container (in this process, over mocked clients), served to the child over loopback HTTP.
    const aws = await awsFixture();
    let awsToken: string;
    try {
      const app = await aws.container();
      const login = await app.request('/v1/auth', { headers: { Authentication: aws.identity('web'), Accept: 'text/plain' } });
      if (login.status !== 200) throw new Error(`cold-start setup: login answered ${login.status}`);
      awsToken = await login.text();
      const put = await app.request(`/v1/secret/${SECRET_NAME}`, {
        method: 'PUT',
        headers: { Reauthentication: awsToken },
        body: JSON.stringify({ Secret: SECRET_VALUE, Roles: ['web'] }),
      });
      if (put.status !== 200) throw new Error(`cold-start setup: PUT answered ${put.status}`);
    } finally {
      await aws.restore();
    }
    loopback = await serveLoopbackAws(aws.aws);
    const awsEvent = join(work, 'aws-event.json');
    await writeFile(awsEvent, JSON.stringify(restEvent('GET', `/v1/secret/${SECRET_NAME}`, { Reauthentication: awsToken })));
    // As the stack configures the function: no extra certificates, the audit log on stdout.
    const { DSSSS_EXTRA_CERTS: _devCa, DSSSS_AUDIT_LOG: _auditOff, AWS_ENDPOINT_URL_STS: _sts, ...functionEnv } = aws.env;
    const awsEnv = {
      ...baseEnv,
      ...functionEnv,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDBENCHMARKONLY',
      AWS_SECRET_ACCESS_KEY: 'bench-secret-not-a-real-key',
      AWS_ENDPOINT_URL: loopback.url,
      AWS_EC2_METADATA_DISABLED: 'true',
    };

    // First logins: a deployment on moto whose seal key an earlier container created (the
    // discarded first run), an instance running with the web role's profile, and an ECS-like
    // task's assumed role for IAM login.
    account = await motoAccount();
    const motoEnv: Record<string, string> = { ...baseEnv, ...account.awsEnv, ...account.serverEnv(`/dssss-cold-${process.pid}/`) };
    // IAM logins need no certificate: as the stack configures the function, without the
    // development CA the EC2 logins need here (AWS's own certificates sign real documents).
    const { DSSSS_EXTRA_CERTS: _devCa2, ...iamEnv } = motoEnv;
    const webDocument = await account.launch('web');
    const worker = await account.assumeRole('worker', 'bench-cold');
    const ec2Event = join(work, 'login-ec2-event.json');
    await writeFile(ec2Event, JSON.stringify(restEvent('GET', '/v1/auth', { Authentication: webDocument })));
    const iamEvent = join(work, 'login-iam-event.json');
    const signIamEvent = async () => writeFile(iamEvent, JSON.stringify(restEvent('POST', '/v1/auth/iam', {}, JSON.stringify(await account!.iamLoginBody(worker)))));
    const loggedInAs = (role: string) => (report: ChildReport) => report.statusCode === 200 && (JSON.parse(report.body) as { role?: string }).role === role;

    const runs = { local: [] as ChildReport[], aws: [] as ChildReport[], 'login-ec2': [] as ChildReport[], 'login-iam': [] as ChildReport[] };
    const requests: Map<string, number>[] = [];
    // One run of each first, thrown away: it reads the artifact into the OS file cache (and
    // on moto, creates the deployment's seal key).
    await coldStart(artifactUrl, localEvent, localEnv);
    await coldStart(artifactUrl, awsEvent, awsEnv);
    await coldStart(artifactUrl, ec2Event, motoEnv, loggedInAs('web'));
    await signIamEvent();
    await coldStart(artifactUrl, iamEvent, iamEnv, loggedInAs('worker'));
    for (let i = 0; i < COLD_RUNS; i++) {
      runs.local.push(await coldStart(artifactUrl, localEvent, localEnv));
      const served = aws.aws.calls.length;
      runs.aws.push(await coldStart(artifactUrl, awsEvent, awsEnv));
      requests.push(wireTargets(aws.aws.calls.slice(served)));
      runs['login-ec2'].push(await coldStart(artifactUrl, ec2Event, motoEnv, loggedInAs('web')));
      await signIamEvent();
      runs['login-iam'].push(await coldStart(artifactUrl, iamEvent, iamEnv, loggedInAs('worker')));
    }
    // What a cold login sends, as moto writes it down: one more run of each, not measured.
    const ec2Requests = (await account.record(async () => void (await coldStart(artifactUrl, ec2Event, motoEnv, loggedInAs('web'))))).map(describeRequest);
    await signIamEvent();
    const iamRequests = (await account.record(async () => void (await coldStart(artifactUrl, iamEvent, iamEnv, loggedInAs('worker'))))).map(describeRequest);
    const perRun = requests.map((map) => JSON.stringify(Object.fromEntries([...map].filter(([, n]) => n > 0).sort())));
    if (new Set(perRun).size !== 1) throw new Error(`cold starts made differing AWS requests: ${[...new Set(perRun)].join(' / ')}`);

    const figures: ColdStartFigure[] = [
      figure('local', 'local (files in a data dir)', runs.local, machine),
      {
        ...figure('aws', 'aws (SSM and KMS clients; stand-ins on 127.0.0.1)', runs.aws, machine),
        awsRequestsPerColdStart: JSON.parse(perRun[0] ?? '{}') as Record<string, number>,
      },
      { ...figure('login-ec2', 'aws, first EC2 login (moto_server on 127.0.0.1)', runs['login-ec2'], machine), awsRequests: ec2Requests },
      { ...figure('login-iam', 'aws, first IAM login (moto_server on 127.0.0.1 as STS)', runs['login-iam'], machine), awsRequests: iamRequests },
    ];
    for (const f of figures) {
      log(
        `  cold start, ${f.backend}: import + first request median ${f.importAndFirstRequestMs.median.toFixed(0)} ms, max ${f.importAndFirstRequestMs.max.toFixed(0)} ms` +
          ` (import ${f.importMs.median.toFixed(0)}, first request ${f.firstRequestMs.median.toFixed(0)}; with Node's boot ${f.processStartToResponseMs.median.toFixed(0)} ms)`,
      );
    }
    for (const f of figures) if (f.awsRequests) log(`    ${f.id} sent: ${f.awsRequests.join(', ')}`);
    const serverStart = await runServerStart(machine, log);
    const { file: _file, ...described } = artifact;
    return { artifact: described, figures, serverStart };
  } finally {
    await loopback?.close();
    await account?.close();
    await local.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

function figure(id: ColdStartId, backend: string, reports: readonly ChildReport[], machine: string): ColdStartFigure {
  const spread = (pick: (r: ChildReport) => number): Spread => {
    const values = reports.map(pick);
    return { median: median(values), max: Math.max(...values), min: Math.min(...values) };
  };
  return {
    id,
    backend,
    runs: reports.length,
    importAndFirstRequestMs: spread((r) => r.importMs + r.firstRequestMs),
    importMs: spread((r) => r.importMs),
    firstRequestMs: spread((r) => r.firstRequestMs),
    processStartToResponseMs: spread((r) => r.bootMs + r.importMs + r.firstRequestMs),
    machine,
  };
}

/** One fresh `node`; its first request must be answered as `expected` says (by default: the secret), or the run is not a measurement. */
async function coldStart(artifactUrl: string, eventFile: string, env: Record<string, string>, expected = isTheSecret): Promise<ChildReport> {
  const child = spawn(process.execPath, [CHILD, artifactUrl, eventFile], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let report: ChildReport;
  try {
    report = JSON.parse(line) as ChildReport;
  } catch {
    throw new Error(`cold-start child exited ${code} without a report: ${stderr.trim().slice(-2000)}`);
  }
  if (!expected(report)) throw new Error(`cold start's first request answered ${report.statusCode}: ${report.body.slice(0, 300)}`);
  return report;
}

function isTheSecret(report: ChildReport): boolean {
  return report.statusCode === 200 && (JSON.parse(report.body) as { secret?: string }).secret === SECRET_VALUE;
}

/** Calls by their X-Amz-Target ("SSM.GetParameter" -> "AmazonSSM.GetParameter"): what went over the wire. */
function wireTargets(calls: readonly string[]): Map<string, number> {
  const prefix: Record<string, string> = { SSM: 'AmazonSSM', KMS: 'TrentService' };
  const counts = new Map<string, number>();
  for (const call of calls) {
    const [service = '', command = ''] = call.split('.');
    const target = `${prefix[service] ?? service}.${command}`;
    counts.set(target, (counts.get(target) ?? 0) + 1);
  }
  return counts;
}
