// The results as Markdown tables: printed after every run and pasted into the README's
// "Performance" section. Every row that has a target says whether it is met.

import type { CallFigure } from './aws-calls';
import { AWS_ROUNDS } from './aws-server';
import { renderClientStart } from './client-start';
import { COLD_RUNS } from './cold-start';
import { HTTP_SECONDS } from './http';
import type { Machine } from './machine';
import { MARGIN, type Check, type Figures } from './targets';

export function formatMicros(us: number): string {
  if (us < 10) return `${us.toFixed(1)} µs`;
  if (us < 1000) return `${us.toFixed(0)} µs`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)} ms`;
  return `${(us / 1000).toFixed(1)} ms`;
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
}

function integer(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function formatTarget(check: Check): string {
  const op = { '<=': '≤', '>=': '≥', '==': '=' }[check.comparator];
  const value =
    check.unit === 'us'
      ? formatMicros(check.target)
      : check.unit === 'ms'
        ? `${check.target} ms`
        : check.unit === 'bytes'
          ? `${integer(check.target)} B`
          : check.unit === 'req/s'
            ? `${integer(check.target)}/s`
            : check.unit === 'MiB'
              ? `${check.target} MiB`
              : String(check.target);
  return `${op} ${value}`;
}

function formatVerdict(check: Check): string {
  return check.verdict === 'missed' || check.verdict === 'not measured' ? `**${check.verdict}**` : check.verdict;
}

export function renderReport(figures: Figures, checks: readonly Check[], machine: Machine, when: string): string {
  const byId = new Map(checks.map((c) => [c.id, c]));
  /** "p50 ≤ 150 µs: met; p99 ≤ 1.00 ms: met" for the checks named, in that order. */
  const targets = (...labelled: [string, string][]): string =>
    labelled
      .flatMap(([label, id]) => {
        const check = byId.get(id);
        return check ? [`${label}${label ? ' ' : ''}${formatTarget(check)}: ${formatVerdict(check)}`] : [];
      })
      .join('; ') || '';
  const out: string[] = [];
  out.push(`Measured ${when} on ${machine.label}, ${machine.memoryGiB} GiB (load average ${machine.loadAverageAtStart} at the start).`, '');

  if (figures.inProcess) {
    out.push('**In-process, warm, local backends** (one call at a time, after a warm-up):', '');
    out.push('| Operation | p50 | p99 | ops/s | Target |', '| --- | --- | --- | --- | --- |');
    const rowTargets: Record<string, [string, string][]> = {
      token: [['p50', 'inprocess.token.p50']],
      get: [
        ['p50', 'inprocess.get.p50'],
        ['p99', 'inprocess.get.p99'],
      ],
      'pkcs7-dsa': [['p50', 'inprocess.pkcs7-dsa.p50']],
      'pkcs7-rsa': [['p50', 'inprocess.pkcs7-rsa.p50']],
    };
    for (const f of figures.inProcess) {
      out.push(`| ${f.operation} | ${formatMicros(f.p50Us)} | ${formatMicros(f.p99Us)} | ${integer(f.opsPerSec)} | ${targets(...(rowTargets[f.id] ?? []))} |`);
    }
    out.push('');
  }

  if (figures.coldStart) {
    const { artifact, figures: cold } = figures.coldStart;
    out.push(
      `**Cold start**: a fresh \`node\` imports the Lambda artifact and serves one request: a GET with a token, or a container's first login; ${COLD_RUNS} runs each, interleaved, after one discarded run:`,
      '',
    );
    out.push(
      '| Backends | import + first request, median | max | import | first request | with Node boot, median | Target |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const f of cold) {
      out.push(
        `| ${f.backend} | ${formatMs(f.importAndFirstRequestMs.median)} | ${formatMs(f.importAndFirstRequestMs.max)} | ${formatMs(f.importMs.median)} | ${formatMs(f.firstRequestMs.median)} | ${formatMs(f.processStartToResponseMs.median)} | ${targets(['median', `coldstart.${f.id}.median`])} |`,
      );
    }
    out.push('');
    const sent = cold.filter((f) => f.awsRequests).map((f) => `${f.id === 'login-ec2' ? 'the EC2 login' : 'the IAM login'} ${f.awsRequests!.join(', ')}`);
    if (sent.length > 0) out.push(`What a cold login sent, as moto recorded it: ${sent.join('; ')}.`, '');
    const start = figures.coldStart.serverStart;
    if (start) {
      out.push(
        `**Local server start**: \`npm start\` (built) to its first answer, \`GET /v1/ready\` (seal keys loaded, store read), on a data dir an earlier start prepared; ${start.runs} runs each, interleaved, after a discarded one:`,
        '',
        '| Started by | median | min | max | Target |',
        '| --- | --- | --- | --- | --- |',
        `| \`npm start\` | ${formatMs(start.npmStartMs.median)} | ${formatMs(start.npmStartMs.min)} | ${formatMs(start.npmStartMs.max)} | ${targets(['median', 'start.npm.median'])} |`,
        `| \`${start.nodeCommand}\` (what \`npm start\` runs, without npm) | ${formatMs(start.nodeStartMs.median)} | ${formatMs(start.nodeStartMs.min)} | ${formatMs(start.nodeStartMs.max)} |  |`,
        `| \`node --import tsx lambda/server.ts\` (the sources, as \`npm start\` ran before) | ${formatMs(start.tsxStartMs.median)} | ${formatMs(start.tsxStartMs.min)} | ${formatMs(start.tsxStartMs.max)} |  |`,
        '',
      );
    }
    const largest = artifact.largestInputs.slice(0, 5).map((i) => `${i.name} ${integer(i.bytes / 1000)} kB`).join(', ');
    out.push(
      `Artifact (infra/bundle.ts, as the CDK stack builds it: ESM, minified, split, \`${artifact.target}\`): **${integer(artifact.bytes)} bytes** in ${artifact.files} files, ${integer(artifact.gzipBytes)} gzipped, of which a cold GET loads ${integer(artifact.eagerBytes)}; ${targets(['', 'coldstart.artifact.bytes'])}. Largest parts: ${largest}.`,
      '',
    );
  }

  if (figures.awsCalls) {
    out.push('**AWS calls per operation** (the shared stand-in: SSM and KMS clients mocked with aws-sdk-client-mock, EC2 and IAM over their query protocol on loopback; real adapters and `runtime.ts` wiring):', '');
    out.push('| Operation | Parameter Store | KMS | EC2 | IAM | STS | Calls | Target |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    const rowTargets: Record<string, [string, string][]> = {
      'get-warm': [
        ['SSM', 'calls.get-warm.ssm'],
        ['KMS', 'calls.get-warm.kms'],
        ['other', 'calls.get-warm.other'],
      ],
      'get-cold': [
        ['SSM', 'calls.get-cold.ssm'],
        ['KMS', 'calls.get-cold.kms'],
        ['other', 'calls.get-cold.other'],
      ],
      'login-cached': [['all', 'calls.login-cached.all']],
      'login-first': [
        ['EC2', 'calls.login-first.ec2'],
        ['IAM', 'calls.login-first.iam'],
        ['other', 'calls.login-first.other'],
      ],
      'login-iam': [
        ['STS', 'calls.login-iam.sts'],
        ['other', 'calls.login-iam.other'],
      ],
      'get-version': [['SSM', 'calls.get-version.ssm']],
      'put-new': [['SSM', 'calls.put-new.ssm']],
      'put-overwrite': [
        ['SSM', 'calls.put-overwrite.ssm'],
        ['other', 'calls.put.other'],
      ],
      delete: [['SSM', 'calls.delete.ssm']],
      'list-100': [['SSM', 'calls.list-100.ssm']],
      'list-all': [['SSM', 'calls.list-all.ssm']],
    };
    for (const f of figures.awsCalls) out.push(callRow(f, targets(...(rowTargets[f.id] ?? []))));
    const wire = figures.coldStart?.figures.find((f) => f.id === 'aws')?.awsRequestsPerColdStart;
    if (wire) {
      const seen = Object.entries(wire)
        .map(([target, n]) => `${n} × ${target.split('.')[1]}`)
        .join(', ');
      out.push(
        '',
        `Cross-check on the wire: each cold start of the bundled artifact on the AWS backends sent ${seen} to the stand-in server (${targets(['SSM', 'coldstart.aws.wire.ssm'], ['KMS', 'coldstart.aws.wire.kms'])}).`,
      );
    }
    out.push('');
  }

  if (figures.awsServer) {
    const { figures: ops, memory } = figures.awsServer;
    out.push(
      `**The server on AWS**: the bundle's server (as \`npm start\` runs it) with \`DSSSS_BACKEND=aws\` against moto_server on 127.0.0.1, one request at a time over one keep-alive connection; each request followed by the same AWS requests sent straight to moto; ${AWS_ROUNDS} interleaved rounds after a warm-up round, medians of the rounds' medians:`,
      '',
    );
    out.push(
      '| Operation | AWS requests it makes | Latency p50 | p99 | Those AWS requests alone | Server\'s share | Server CPU a request | Target |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const f of ops) {
      const requests = Object.entries(f.awsRequests.reduce<Record<string, number>>((n, r) => ({ ...n, [r]: (n[r] ?? 0) + 1 }), {}))
        .map(([r, n]) => (n === 1 ? r : `${n} × ${r}`))
        .join(', ');
      out.push(
        `| ${f.operation} | ${requests} | ${formatMs(f.latencyMs)} | ${formatMs(f.p99Ms)} | ${formatMs(f.directMs)} | ${formatMs(f.serverShareMs)} | ${formatMicros(f.serverCpuUs)} | ${targets(['share', `aws.${f.id}.share`])} |`,
      );
    }
    out.push(
      '',
      `Server memory after the load (${integer(memory.requestsServed)} requests): **${memory.rssMiB.toFixed(1)} MiB** resident (peak ${memory.peakRssMiB.toFixed(1)} MiB), started as \`npm start\` starts it (\`node ${memory.npmStartNodeOptions.join(' ')}\`); ${targets(['', 'aws.rss'])}. The same requests to a second server under node's default heap settings: ${memory.nodeDefaults.rssMiB.toFixed(1)} MiB (peak ${memory.nodeDefaults.peakRssMiB.toFixed(1)} MiB).`,
      '',
    );
    const { parts } = figures.awsServer;
    if (parts.length > 0) {
      out.push('**What these are made of**, each part beside what it replaced, in the same run (calls: against a loopback server that answers at once, medians of 7 rounds of 200; one-offs: a fresh `node` each, median of 7):', '');
      out.push('| Part | Cost |', '| --- | --- |');
      for (const part of parts) out.push(`| ${part.what} | ${part.unit === 'us' ? `${integer(part.value)} µs a call` : formatMs(part.value)} |`);
      out.push('');
    }
  }

  if (figures.http) {
    out.push(`**HTTP**: the local server (the bundle's server, as \`npm start\` runs it, its own process) under autocannon, GET of one secret with a token, ${HTTP_SECONDS} s per row:`, '');
    out.push('| Connections | GET/s | p50 | p99 | Target |', '| --- | --- | --- | --- | --- |');
    for (const f of figures.http) {
      const t = f.connections === 50 ? targets(['', 'http.50.rps'], ['p99', 'http.50.p99']) : '';
      out.push(`| ${f.connections} | ${integer(f.requestsPerSec)} | ${formatMs(f.p50Ms)} | ${formatMs(f.p99Ms)} | ${t} |`);
    }
    out.push('');
  }

  if (figures.clientStart) out.push(...renderClientStart(figures.clientStart, targets));

  out.push(
    `"within margin": worse than the target by at most ${MARGIN * 100}% (timings, sizes, throughput); call counts are exact. \`npm run bench -- --check\` fails on anything **missed**.`,
  );
  return out.join('\n');
}

function callRow(f: CallFigure, target: string): string {
  if (!f.counts) return `| ${f.operation} | ${f.note ?? 'n/a'} | | | | | | |`;
  const cell = (service: 'ssm' | 'kms' | 'ec2' | 'iam' | 'sts') => String(f.counts?.[service] ?? 0);
  const detail = Object.entries(f.commands)
    .map(([command, n]) => (n === 1 ? command : `${n} × ${command}`))
    .join(', ');
  return `| ${f.operation} | ${cell('ssm')} | ${cell('kms')} | ${cell('ec2')} | ${cell('iam')} | ${cell('sts')} | ${detail || 'none'} | ${target} |`;
}
