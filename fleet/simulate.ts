// One scenario of `npm run fleet`: the real server (lambda/aws-lambda.ts in many containers
// behind an API Gateway stand-in, fleet/lambda-pool.ts), the real AWS adapters and SDK clients
// against the shared AWS stand-in served on loopback with AWS's quotas as token buckets
// (test/support/fake-aws.ts), and the real client library (cli/client.ts: login, retries,
// bulk read, watch) in every instance and task, each with its own IMDS, credentials and token.
//
// Time may be compressed by a factor k: the quotas refill k times faster, arrivals come k
// times closer, the containers' clock (token lifetimes, the read cache) and the clients'
// backoff run k times faster, AWS's round trips and Lambda's cold start are k times shorter.
// Every figure is reported in simulated seconds, i.e. as it would be in real time. What k
// does not compress (this machine's CPU, the SDK's own retry delays) makes figures worse, not better.

import { randomUUID } from 'node:crypto';
import { loadConfig } from '../lambda/config';
import { createRuntime } from '../lambda/runtime';
import type { Clock } from '../lambda/ports';
import { AWS_DEFAULT_QUOTAS, AWS_HIGHER_THROUGHPUT_QUOTAS, FakeAws, type CallCount, type QuotaTable, type Service } from '../test/support/fake-aws';
import type { PoolStats } from './lambda-pool';
import { startClients, type BootPlan } from './clients-thread';
import { startLambda } from './lambda-thread';
import { SimClock } from './sim-clock';
import type { Scenario } from './scenarios';

/** A round trip to each service within a Region, as assumed here (not measured: AWS's own p50s are of this order). */
export const AWS_ROUND_TRIP_MS: Readonly<Record<Service, number>> = {
  SSM: 10,
  KMS: 8,
  DynamoDB: 5,
  STS: 12,
  EC2: 40,
  IAM: 30,
  EventBridge: 10,
};
/** What a new Lambda container spends before its handler runs (starting Node.js 24 and loading the bundle). */
export const LAMBDA_INIT_MS = 250;
export const LAMBDA_CONCURRENCY = 1_000;
const API_GATEWAY_TIMEOUT_MS = 29_000;
const SERVER_ID = 'dssss-fleet';
const TABLE = 'dssss-fleet-bookkeeping';
const QUOTAS: Record<Scenario['quotas'], QuotaTable> = { default: AWS_DEFAULT_QUOTAS, 'higher-throughput': AWS_HIGHER_THROUGHPUT_QUOTAS };
const SSM_READS = ['SSM.GetParameter', 'SSM.GetParameters', 'SSM.GetParametersByPath', 'SSM.GetParameterHistory'];

export interface SimulationOptions {
  /** k: simulated seconds per real second. */
  readonly compression: number;
  /** Boots per scenario as a fraction of the scenario's own (1: as specified); a smaller one is a rehearsal. */
  readonly fraction: number;
  readonly log: (line: string) => void;
  /**
   * Where per-instance bookkeeping lives: the table the stack creates (the default), or,
   * for comparison, Parameter Store and EC2, as without DSSSS_BOOKKEEPING_TABLE.
   */
  readonly bookkeeping?: 'table' | 'parameter-store';
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly compression: number;
  readonly boots: number;
  readonly failed: number;
  /** Why boots failed: the client's error code, or "incomplete" (fewer secrets than it should read). */
  readonly failures: Readonly<Record<string, number>>;
  /** Arrival to all of a boot's secrets, simulated seconds. */
  readonly timeToSecrets: { readonly p50: number; readonly p99: number; readonly max: number };
  /** From the first arrival to the last boot done, simulated seconds. */
  readonly makespanSeconds: number;
  /** AWS requests per boot, by API ("SSM.GetParametersByPath"), throttled ones included. */
  readonly callsPerBoot: Readonly<Record<string, number>>;
  readonly ssmReadsPerBoot: number;
  readonly describeInstancesPerBoot: number;
  /** Answered with the service's throttling error, by API. */
  readonly throttled: Readonly<Record<string, number>>;
  readonly lambda: PoolStats;
  /** The busiest quota: the calls it needed beyond its burst, over its refill rate: the least time they could take. */
  readonly floor: { readonly group: string; readonly calls: number; readonly perSecond: number; readonly seconds: number };
  readonly realSeconds: number;
}

/** A steady state, measured over one re-read interval after the last boot. */
export interface SteadyResult {
  readonly id: string;
  readonly title: string;
  readonly compression: number;
  readonly watchers: number;
  readonly intervalSeconds: number;
  /** Bulk reads the watchers made in the interval. */
  readonly rereads: number;
  readonly ssmReads: number;
  readonly ssmReadsPerReread: number;
  readonly failedRereads: number;
  readonly callsPerReread: Readonly<Record<string, number>>;
  readonly throttled: Readonly<Record<string, number>>;
  readonly realSeconds: number;
}


/**
 * Boots `scenario`'s fleet; with `steady`, the fleet then goes on as `steady` says: each boot
 * watches its prefix from the moment it booted (as `exec --watch` would), and the interval
 * after the last boot is measured.
 */
export async function simulate(
  scenario: Scenario,
  options: SimulationOptions,
  steady?: Scenario,
): Promise<{ boot: ScenarioResult; steady?: SteadyResult }> {
  const k = options.compression;
  const startedReal = performance.now();
  const boots = Math.max(1, Math.round(scenario.boots * options.fraction));
  const fake = new FakeAws({ mock: false, callLog: false });
  fake.createTable(TABLE, 'k');
  const aws = await fake.serve();
  // The containers' SDK clients read the process's environment: the stand-in, and keys it takes.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: aws.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDFLEETFUNCTION',
    AWS_SECRET_ACCESS_KEY: 'fleet-function-not-a-real-key',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const clock = SimClock.begin(k);
  const serverEnv = {
    DSSSS_BACKEND: 'aws',
    DSSSS_KMS_KEY_ID: 'alias/dssss-fleet',
    DSSSS_PARAMETER_PREFIX: '/dssss/',
    DSSSS_ALLOWED_ACCOUNTS: fake.account,
    DSSSS_DISTINGUISHED_ROLES: 'none',
    DSSSS_WRITER_ROLES: '*',
    DSSSS_SERVER_ID: SERVER_ID,
    ...(options.bookkeeping === 'parameter-store' ? {} : { DSSSS_BOOKKEEPING_TABLE: TABLE }),
    DSSSS_EXTRA_CERTS: fake.ca.certPem,
    DSSSS_AUDIT_LOG: 'off',
    DSSSS_METRICS: 'off',
    AWS_ENDPOINT_URL_STS: aws.url,
    AWS_REGION: 'us-east-1',
  };
  const config = loadConfig(serverEnv);

  const prefix = (group: number) => (scenario.kind === 'ec2' ? `app${group}/` : `svc${group}/`);
  const role = (group: number) => (scenario.kind === 'ec2' ? `app${group}` : `svc${group}`);
  options.log(`  seeding ${scenario.groups * scenario.secretsPerGroup} secrets; ${boots.toLocaleString('en-US')} ${scenario.kind === 'ec2' ? 'instances' : 'tasks'}`);
  await seed(fake, config, clock, scenario, prefix, role);

  const clientEnv = { AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: aws.url, DSSSS_SERVER_ID: SERVER_ID };
  const plans: BootPlan[] = [];
  for (let i = 0; i < boots; i++) {
    const group = i % scenario.groups;
    let env: Record<string, string>;
    if (scenario.kind === 'ec2') {
      const instance = fake.addInstance(fake.newInstanceId(), fake.account, role(group));
      env = { ...clientEnv, AWS_EC2_METADATA_SERVICE_ENDPOINT: aws.imdsUrl(instance.instanceId) };
    } else {
      const task = fake.assumeRole(role(group), `task-${randomUUID()}`);
      env = {
        ...clientEnv,
        AWS_ACCESS_KEY_ID: task.accessKeyId,
        AWS_SECRET_ACCESS_KEY: task.secretAccessKey,
        AWS_SESSION_TOKEN: task.sessionToken ?? '',
        AWS_EC2_METADATA_DISABLED: 'true',
      };
    }
    plans.push({ env, prefix: prefix(group), expected: scenario.secretsPerGroup, atMs: Math.random() * scenario.windowSeconds * 1000 });
  }

  const lambda = await startLambda({
    env: { ...(process.env as Record<string, string>), ...serverEnv },
    clock: clock.shared,
    concurrencyCap: LAMBDA_CONCURRENCY,
    coldStartMs: LAMBDA_INIT_MS,
    integrationTimeoutMs: API_GATEWAY_TIMEOUT_MS,
  });
  fake.resetCounts();
  fake.setQuotas(QUOTAS[scenario.quotas], { scale: k });
  for (const [service, ms] of Object.entries(AWS_ROUND_TRIP_MS) as [Service, number][]) fake.setLatency(service, { ms: (ms * 0.8) / k, jitterMs: (ms * 0.4) / k });

  const clients = await startClients({
    url: lambda.url,
    clock: clock.shared,
    boots: plans,
    watchIntervalMs: steady?.steady === undefined ? undefined : steady.steady.intervalSeconds * 1000,
  });
  const started = clock.now();
  let lastProgress = 0;
  clients.onProgress((done) => {
    if (clock.now() - lastProgress < 15_000) return;
    lastProgress = clock.now();
    void lambda.stats().then((stats) =>
      options.log(`  ${((clock.now() - started) / 1000).toFixed(0)} s: ${done.toLocaleString('en-US')} of ${boots.toLocaleString('en-US')} booted, ${stats.containers} containers`),
    );
  });
  const outcomes = await clients.booted;
  const firstArrival = Math.min(...outcomes.map((o) => o.arrived));
  const lastDone = Math.max(...outcomes.map((o) => o.done));
  const bootCounts = fake.counts();
  const bootLambda = await lambda.stats();
  const bootReal = (performance.now() - startedReal) / 1000;

  let steadyResult: SteadyResult | undefined;
  if (steady?.steady !== undefined) {
    const { intervalSeconds } = steady.steady;
    options.log(`  (${steady.id}) every instance re-reads every ${intervalSeconds} s; measuring the ${intervalSeconds} s after the last boot`);
    const before = { rereads: (await lambda.stats()).routes['GET /v1/secrets'] ?? 0, counts: fake.counts(), real: performance.now() };
    await clock.sleep(intervalSeconds * 1000);
    const after = { rereads: (await lambda.stats()).routes['GET /v1/secrets'] ?? 0, counts: fake.counts() };
    // Every failed re-read counts, also those while the fleet was still booting.
    const failedRereads = await clients.stop();
    const rereads = after.rereads - before.rereads;
    const delta = difference(after.counts, before.counts);
    const reads = ssmReads(delta);
    steadyResult = {
      id: steady.id,
      title: steady.title,
      compression: k,
      watchers: outcomes.filter((o) => o.failure === undefined).length,
      intervalSeconds,
      rereads,
      ssmReads: reads,
      ssmReadsPerReread: rereads === 0 ? Number.NaN : round(reads / rereads),
      failedRereads,
      callsPerReread: Object.fromEntries(Object.entries(delta).map(([api, c]) => [api, rereads === 0 ? Number.NaN : round(c.requests / rereads)])),
      throttled: Object.fromEntries(Object.entries(delta).filter(([, c]) => c.throttled > 0).map(([api, c]) => [api, c.throttled])),
      realSeconds: round((performance.now() - before.real) / 1000),
    };
  } else {
    await clients.stop();
  }
  await lambda.close();
  await aws.close();

  const times = outcomes.filter((o) => o.failure === undefined).map((o) => (o.done - o.arrived) / 1000).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const o of outcomes) if (o.failure !== undefined) failures[o.failure] = (failures[o.failure] ?? 0) + 1;
  const callsPerBoot: Record<string, number> = {};
  const throttled: Record<string, number> = {};
  for (const [api, count] of Object.entries(bootCounts)) {
    callsPerBoot[api] = round(count.requests / boots);
    if (count.throttled > 0) throttled[api] = count.throttled;
  }
  const boot: ScenarioResult = {
    id: scenario.id,
    title: scenario.title,
    compression: k,
    boots,
    failed: outcomes.filter((o) => o.failure !== undefined).length,
    failures,
    timeToSecrets: { p50: quantile(times, 0.5), p99: quantile(times, 0.99), max: round(times.at(-1) ?? Number.NaN) },
    makespanSeconds: round((lastDone - firstArrival) / 1000),
    callsPerBoot,
    ssmReadsPerBoot: round(ssmReads(bootCounts) / boots),
    describeInstancesPerBoot: round((bootCounts['EC2.DescribeInstances']?.requests ?? 0) / boots),
    throttled,
    lambda: bootLambda,
    floor: floor(QUOTAS[scenario.quotas], bootCounts),
    realSeconds: round(bootReal),
  };
  return steadyResult === undefined ? { boot } : { boot, steady: steadyResult };
}

function difference(after: Record<string, CallCount>, before: Record<string, CallCount>): Record<string, CallCount> {
  const out: Record<string, CallCount> = {};
  for (const [api, c] of Object.entries(after)) {
    const d = { requests: c.requests - (before[api]?.requests ?? 0), throttled: c.throttled - (before[api]?.throttled ?? 0) };
    if (d.requests > 0) out[api] = d;
  }
  return out;
}

/** Every group's secrets, written once through the service as a deployment's pipeline would. */
async function seed(fake: FakeAws, config: ReturnType<typeof loadConfig>, clock: Clock, scenario: Scenario, prefix: (g: number) => string, role: (g: number) => string): Promise<void> {
  const { service } = await createRuntime(config, { clock });
  const seeder = { account: fake.account, role: 'fleet-seeder', principal: 'seed' };
  for (let g = 0; g < scenario.groups; g++) {
    fake.addRole(role(g));
    await Promise.all(
      Array.from({ length: scenario.secretsPerGroup }, (_, s) => service.put(seeder, `${prefix(g)}secret-${s}`, `value ${g}.${s} ${randomUUID()}`, [role(g)])),
    );
  }
}

function ssmReads(counts: Record<string, { requests: number }>): number {
  return SSM_READS.reduce((n, api) => n + (counts[api]?.requests ?? 0), 0);
}

/** The quota the calls needed (the throttled tries not counted) kept busiest: calls beyond its burst over its refill rate. */
function floor(table: QuotaTable, counts: Record<string, { requests: number; throttled: number }>): ScenarioResult['floor'] {
  let busiest: ScenarioResult['floor'] = { group: 'none', calls: 0, perSecond: 0, seconds: 0 };
  for (const [group, rule] of Object.entries(table)) {
    const calls = rule.apis.reduce((n, api) => n + (counts[api] ? counts[api].requests - counts[api].throttled : 0), 0);
    const seconds = round(Math.max(0, calls - rule.burst) / rule.rate);
    if (seconds > busiest.seconds || (busiest.calls === 0 && calls > 0)) busiest = { group, calls, perSecond: rule.rate, seconds };
  }
  return busiest;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
}

const round = (n: number) => Math.round(n * 1000) / 1000;
