// The targets of issues 5 and 14 and the README's own claims about AWS calls, judged
// against a run's figures. Timings, sizes and throughput get a margin (noise between runs
// and machines); call counts are exact.

import type { CallFigure, CountedService } from './aws-calls';
import type { AwsServerResult } from './aws-server';
import { clientStartTargets, type ClientStartResult } from './client-start';
import type { ColdStartResult } from './cold-start';
import type { HttpFigure } from './http';
import type { LatencyFigure } from './in-process';

/** How far a timing, size or throughput may fall short of its target before `--check` fails. */
export const MARGIN = 0.25;

export type Verdict = 'met' | 'within margin' | 'missed' | 'not measured';

export interface Check {
  /** The figure it judges, e.g. "inprocess.get.p50". */
  readonly id: string;
  readonly description: string;
  readonly unit: string;
  readonly comparator: '<=' | '>=' | '==';
  readonly target: number;
  /** 0 for exact targets. */
  readonly margin: number;
  readonly measured: number | null;
  readonly verdict: Verdict;
  /** "issue 5", or "README" for the call counts the README documents. */
  readonly source: string;
}

export interface Figures {
  readonly inProcess?: readonly LatencyFigure[];
  readonly coldStart?: ColdStartResult;
  readonly awsCalls?: readonly CallFigure[];
  readonly http?: readonly HttpFigure[];
  readonly clientStart?: ClientStartResult;
  readonly awsServer?: AwsServerResult;
}

/** The artifact target, "1.5 MB", read as 1,500,000 bytes. */
export const ARTIFACT_MAX_BYTES = 1_500_000;

export function judge(figures: Figures): Check[] {
  const checks: Check[] = [];
  const add = (
    id: string,
    description: string,
    unit: string,
    comparator: Check['comparator'],
    target: number,
    measured: number | null | undefined,
    source = 'issue 5',
  ) => {
    const margin = unit === 'calls' ? 0 : MARGIN;
    checks.push({ id, description, unit, comparator, target, margin, measured: measured ?? null, verdict: verdict(comparator, target, margin, measured), source });
  };

  if (figures.inProcess) {
    const op = (id: string) => figures.inProcess?.find((f) => f.id === id);
    add('inprocess.get.p50', 'Warm GET in-process, p50', 'us', '<=', 150, op('get')?.p50Us);
    add('inprocess.get.p99', 'Warm GET in-process, p99', 'us', '<=', 1000, op('get')?.p99Us);
    add('inprocess.token.p50', 'Token validation, p50', 'us', '<=', 30, op('token')?.p50Us);
    add('inprocess.pkcs7-dsa.p50', 'PKCS#7 verification (DSA), p50', 'us', '<=', 2000, op('pkcs7-dsa')?.p50Us);
    add('inprocess.pkcs7-rsa.p50', 'PKCS#7 verification (RSA-2048), p50', 'us', '<=', 2000, op('pkcs7-rsa')?.p50Us);
  }

  if (figures.coldStart) {
    for (const f of figures.coldStart.figures) {
      if (f.id === 'local' || f.id === 'aws') {
        add(`coldstart.${f.id}.median`, `Cold start (import + first request), ${f.id} backends, median`, 'ms', '<=', 150, f.importAndFirstRequestMs.median);
      }
    }
    const login = (id: string) => figures.coldStart?.figures.find((f) => f.id === id)?.importAndFirstRequestMs.median;
    add('coldstart.login-ec2.median', 'First EC2 login of a cold container of the bundled artifact (import + login), median', 'ms', '<=', 150, login('login-ec2'), 'issue 14');
    add('coldstart.login-iam.median', 'First IAM login of a cold container of the bundled artifact (import + login), median', 'ms', '<=', 100, login('login-iam'), 'issue 14');
    add('start.npm.median', '`npm start` (built) to its first answer, median', 'ms', '<=', 300, figures.coldStart.serverStart?.npmStartMs.median, 'issue 14');
    add('coldstart.artifact.bytes', 'Lambda artifact, minified', 'bytes', '<=', ARTIFACT_MAX_BYTES, figures.coldStart.artifact.bytes);
    const wire = figures.coldStart.figures.find((f) => f.id === 'aws')?.awsRequestsPerColdStart;
    if (wire) {
      const ssm = Object.entries(wire).filter(([target]) => target.startsWith('AmazonSSM.')).reduce((n, [, c]) => n + c, 0);
      const kms = Object.entries(wire).filter(([target]) => target.startsWith('TrentService.')).reduce((n, [, c]) => n + c, 0);
      add('coldstart.aws.wire.ssm', 'Cold GET of the bundled artifact, Parameter Store requests on the wire', 'calls', '<=', 2, ssm);
      add('coldstart.aws.wire.kms', 'Cold GET of the bundled artifact, KMS requests on the wire', 'calls', '<=', 1, kms);
    }
  }

  if (figures.awsCalls) {
    const calls = (id: string, service?: CountedService): number | null => {
      const counts = figures.awsCalls?.find((f) => f.id === id)?.counts;
      if (!counts) return null;
      return service === undefined ? Object.values(counts).reduce((a, b) => a + b, 0) : counts[service];
    };
    const others = (id: string, ...services: CountedService[]): number | null => {
      const total = calls(id);
      return total === null ? null : total - services.reduce((n, s) => n + (calls(id, s) ?? 0), 0);
    };
    add('calls.get-warm.ssm', 'Warm GET: Parameter Store calls', 'calls', '==', 1, calls('get-warm', 'ssm'));
    add('calls.get-warm.kms', 'Warm GET: KMS calls', 'calls', '==', 0, calls('get-warm', 'kms'));
    add('calls.get-warm.other', 'Warm GET: other AWS calls', 'calls', '==', 0, others('get-warm', 'ssm', 'kms'));
    add('calls.get-cold.ssm', 'Cold GET: Parameter Store calls (warm + at most 1)', 'calls', '<=', 2, calls('get-cold', 'ssm'));
    add('calls.get-cold.kms', 'Cold GET: KMS calls', 'calls', '<=', 1, calls('get-cold', 'kms'));
    add('calls.get-cold.other', 'Cold GET: other AWS calls', 'calls', '==', 0, others('get-cold', 'ssm', 'kms'));
    add('calls.login-cached.all', 'Cached EC2 login: AWS calls', 'calls', '==', 0, calls('login-cached'));
    // What the README's "AWS calls per request" table says.
    add('calls.login-first.ec2', 'First EC2 login (warm container): DescribeInstances', 'calls', '==', 1, calls('login-first', 'ec2'), 'README');
    add('calls.login-first.iam', 'First EC2 login (warm container, its instance profile already seen): GetInstanceProfile', 'calls', '==', 0, calls('login-first', 'iam'), 'README');
    add('calls.login-first.ssm', 'First EC2 login (warm container): GetParameter of its nonce binding', 'calls', '==', 1, calls('login-first', 'ssm'), 'README');
    add('calls.login-first.other', 'First EC2 login (warm container): other AWS calls', 'calls', '==', 0, others('login-first', 'ec2', 'iam', 'ssm'), 'README');
    add('calls.login-iam.sts', 'IAM login: STS requests', 'calls', '==', 1, calls('login-iam', 'sts'), 'README');
    add('calls.login-iam.other', 'IAM login: other AWS calls', 'calls', '==', 0, others('login-iam', 'sts'), 'README');
    add('calls.get-version.ssm', 'GET ?version=N: Parameter Store calls (one GetParameterHistory page)', 'calls', '==', 1, calls('get-version', 'ssm'), 'README');
    add('calls.put-new.ssm', 'PUT (new name): Parameter Store calls', 'calls', '==', 2, calls('put-new', 'ssm'), 'README');
    add('calls.put-overwrite.ssm', 'PUT (existing name): Parameter Store calls', 'calls', '==', 2, calls('put-overwrite', 'ssm'), 'README');
    add('calls.put.other', 'PUT: other AWS calls', 'calls', '==', 0, others('put-overwrite', 'ssm'), 'README');
    add('calls.delete.ssm', 'DELETE (soft: the latest read, a tombstone written): Parameter Store calls', 'calls', '==', 2, calls('delete', 'ssm'), 'README');
    add('calls.list-100.ssm', 'LIST limit=100: GetParametersByPath calls (ceil(100/10))', 'calls', '<=', 10, calls('list-100', 'ssm'), 'README');
    add('calls.list-all.ssm', 'LIST of 1,000 names, 10 pages of 100: GetParametersByPath calls', 'calls', '<=', 100, calls('list-all', 'ssm'), 'README');
  }

  if (figures.awsServer) {
    const share = (id: string) => figures.awsServer?.figures.find((f) => f.id === id)?.serverShareMs;
    add('aws.get.share', "AWS mode over the wire: the server's own share of a GET", 'ms', '<=', 0.5, share('get'), 'issue 14');
    add('aws.put.share', "AWS mode over the wire: the server's own share of a PUT", 'ms', '<=', 1, share('put'), 'issue 14');
    add('aws.login-ec2.share', "AWS mode over the wire: the server's own share of an uncached EC2 login", 'ms', '<=', 1.5, share('login-ec2'), 'issue 14');
    add('aws.login-iam.share', "AWS mode over the wire: the server's own share of an IAM login (uncached by nature)", 'ms', '<=', 1.5, share('login-iam'), 'issue 14');
    add('aws.rss', 'AWS mode, run from the bundle: resident memory after the load', 'MiB', '<=', 96, figures.awsServer.memory.rssMiB, 'issue 14');
  }

  if (figures.http) {
    const at50 = figures.http.find((f) => f.connections === 50);
    add('http.50.rps', 'Local server, GET at 50 connections: requests/s', 'req/s', '>=', 3000, at50?.requestsPerSec);
    add('http.50.p99', 'Local server, GET at 50 connections: p99', 'ms', '<=', 50, at50?.p99Ms);
  }
  if (figures.clientStart) {
    for (const c of clientStartTargets(figures.clientStart)) add(c.id, c.description, c.unit, '<=', c.target, c.measured, 'issue 13');
  }
  return checks;
}

function verdict(comparator: Check['comparator'], target: number, margin: number, measured: number | null | undefined): Verdict {
  if (measured === null || measured === undefined || Number.isNaN(measured)) return 'not measured';
  switch (comparator) {
    case '==':
      return measured === target ? 'met' : 'missed';
    case '<=':
      return measured <= target ? 'met' : measured <= target * (1 + margin) ? 'within margin' : 'missed';
    case '>=':
      return measured >= target ? 'met' : measured >= target * (1 - margin) ? 'within margin' : 'missed';
  }
}

/** What `--check` fails on: a figure missed beyond its margin, or one that was not measured. */
export function failures(checks: readonly Check[]): Check[] {
  return checks.filter((c) => c.verdict === 'missed' || c.verdict === 'not measured');
}
