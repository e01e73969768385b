// `npm run bench`: every figure behind the README's "Performance" section, written to
// bench/results.json and printed as tables. `-- --check` also fails (exit 1) when a figure
// misses its target by more than the margin; `-- --only=inprocess,coldstart,calls,http,aws`
// runs some suites (also `client`) and leaves results.json alone; `-- --only=aws
// --profile=DIR` runs the AWS-mode server under --cpu-prof and --heap-prof and summarises
// where its CPU went.

import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runAwsCalls } from './aws-calls';
import { runAwsServer } from './aws-server';
import { PROJECT_ROOT } from './bundle';
import { runClientStart } from './client-start';
import { runColdStart } from './cold-start';
import { runHttp } from './http';
import { runInProcess } from './in-process';
import { describeMachine } from './machine';
import { summarizeProfiles } from './profile-summary';
import { renderReport } from './report';
import { failures, judge, MARGIN, type Figures } from './targets';

const SUITES = ['inprocess', 'coldstart', 'calls', 'http', 'client', 'aws'] as const;
type Suite = (typeof SUITES)[number];
const RESULTS = new URL('./results.json', import.meta.url);

class UsageError extends Error {}

async function main(): Promise<number> {
  let values: { check?: boolean; only?: string; profile?: string };
  try {
    ({ values } = parseArgs({ options: { check: { type: 'boolean', default: false }, only: { type: 'string' }, profile: { type: 'string' } }, strict: true }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; usage: npm run bench [-- --check] [-- --only=${SUITES.join(',')}] [-- --profile=DIR]`);
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((s) => !(SUITES as readonly string[]).includes(s)) ?? [];
  if (unknown.length > 0) throw new UsageError(`--only: unknown suite ${unknown.join(', ')}; choose from ${SUITES.join(', ')}`);
  const selected = (only ?? [...SUITES]) as Suite[];
  if (values.profile !== undefined && (only === undefined || !selected.includes('aws'))) {
    throw new UsageError('--profile profiles the aws suite: use it with --only=aws (its figures are taken on an unminified build, under the profiler)');
  }
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
  if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });

  const machine = describeMachine();
  const started = performance.now();
  const log = (line: string) => console.log(line);
  log(`dssss benchmarks on ${machine.label}`);

  const figures: { -readonly [K in keyof Figures]: Figures[K] } = {};
  if (selected.includes('inprocess')) {
    log('\nIn-process, warm, local backends');
    figures.inProcess = await runInProcess(machine.label, log);
  }
  if (selected.includes('coldstart')) {
    log('\nCold start of the bundled Lambda artifact');
    figures.coldStart = await runColdStart(machine.label, log);
  }
  if (selected.includes('calls')) {
    log('\nAWS calls per operation (mocked SDK clients)');
    figures.awsCalls = await runAwsCalls(machine.label, log);
  }
  if (selected.includes('http')) {
    log('\nHTTP: the local server under autocannon');
    figures.http = await runHttp(machine.label, log);
  }
  if (selected.includes('client')) {
    log('\nThe client: a command\'s start to its first request');
    figures.clientStart = await runClientStart(log);
  }
  if (selected.includes('aws')) {
    log('\nThe server on the AWS backends, against moto_server: latency and its own share, memory');
    figures.awsServer = await runAwsServer(machine.label, log, profileDir);
    if (profileDir !== undefined) log(`\n${await summarizeProfiles(profileDir)}\n(profiles and the build they ran in ${profileDir})`);
  }

  const durationSeconds = Math.round((performance.now() - started) / 100) / 10;
  const checks = judge(figures);
  const when = new Date().toISOString().slice(0, 10);
  const report = renderReport(figures, checks, machine, when);
  log(`\n${report}\n`);

  if (only === undefined) {
    const results = {
      about: 'Written by `npm run bench` (bench/run.ts); the README\'s "Performance" section shows these figures.',
      generatedAt: new Date().toISOString(),
      commit: commitOf(),
      machine,
      durationSeconds,
      marginPercent: MARGIN * 100,
      ...figures,
      checks,
    };
    await writeFile(RESULTS, `${JSON.stringify(results, roundNumbers, 2)}\n`);
    log(`wrote bench/results.json (${durationSeconds} s in all)`);
  } else {
    log(`--only: bench/results.json left as it was (${durationSeconds} s)`);
  }

  if (!values.check) return 0;
  const failed = failures(checks);
  if (failed.length === 0) {
    log(`check: all ${checks.length} targets met or within the ${MARGIN * 100}% margin`);
    return 0;
  }
  console.error(`check FAILED: ${failed.length} of ${checks.length} targets missed (margin ${MARGIN * 100}% on timings, sizes and throughput; call counts exact):`);
  for (const c of failed) {
    console.error(`  ${c.id}: ${c.description}: measured ${c.measured === null ? 'nothing' : round(c.measured)} ${c.unit}, target ${c.comparator} ${c.target} ${c.unit} (${c.source})`);
  }
  return 1;
}

/** The commit measured, and whether the code under measurement had uncommitted changes. */
function commitOf(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lambda', 'infra', 'package-lock.json'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
    return dirty === '' ? head : `${head} (with uncommitted changes in lambda/ or infra/)`;
  } catch {
    return undefined;
  }
}

function round(n: number): number {
  return Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 100) / 100;
}

function roundNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value) ? round(value) : value;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // A usage error needs its message; a suite that failed needs its stack.
    console.error(`bench: ${err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
