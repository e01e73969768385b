// The fleet boots `npm run fleet` simulates (issue 17): who arrives, how fast, what each one
// reads, under which of AWS's quota presets, and what each must achieve.

export type ScenarioId = 'a' | 'b' | 'c' | 'd' | 'e';

export interface Scenario {
  readonly id: ScenarioId;
  readonly title: string;
  /** EC2 instances (instance role credentials from IMDS), or ECS tasks (task role credentials). */
  readonly kind: 'ec2' | 'ecs';
  /** Instances or tasks. */
  readonly boots: number;
  /** Arrivals are spread at random over this many (simulated) seconds. */
  readonly windowSeconds: number;
  /** Apps or services: boot i belongs to group i mod groups, and reads its prefix. */
  readonly groups: number;
  readonly secretsPerGroup: number;
  readonly quotas: 'default' | 'higher-throughput';
  /**
   * A steady state: once every boot is done, each re-reads its prefix at this interval, as
   * `dssss exec --watch` does; measured over one interval after the last boot.
   */
  readonly steady?: { readonly intervalSeconds: number };
  /** The scenario whose fleet this one goes on with (its boot is that scenario's, and reported there). */
  readonly continues?: ScenarioId;
  readonly targets: {
    /** Time from arrival to all of a boot's secrets, p99, in (simulated) seconds. */
    readonly p99Seconds?: number;
    /** Parameter Store reads (all of GetParameter, GetParameters, GetParametersByPath, GetParameterHistory) per boot, on average. */
    readonly ssmReadsPerBoot?: number;
    /** Parameter Store reads per re-read in the steady state. */
    readonly ssmReadsPerReread?: number;
  };
}

const EC2_FLEET = { kind: 'ec2', groups: 10, secretsPerGroup: 20 } as const;

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'a',
    title: '1,000 EC2 instances over 60 s, 20 secrets each (10 apps), default quotas',
    ...EC2_FLEET,
    boots: 1_000,
    windowSeconds: 60,
    quotas: 'default',
    targets: { p99Seconds: 10, ssmReadsPerBoot: 2 },
  },
  {
    id: 'b',
    title: '10,000 EC2 instances over 5 minutes, 20 secrets each (10 apps), default quotas',
    ...EC2_FLEET,
    boots: 10_000,
    windowSeconds: 300,
    quotas: 'default',
    targets: { p99Seconds: 30, ssmReadsPerBoot: 2 },
  },
  {
    id: 'c',
    title: '2,000 ECS tasks of 50 services over 60 s, IAM login, 10 secrets each, default quotas',
    kind: 'ecs',
    boots: 2_000,
    windowSeconds: 60,
    groups: 50,
    secretsPerGroup: 10,
    quotas: 'default',
    targets: { p99Seconds: 10 },
  },
  {
    id: 'd',
    title: '(b) with Parameter Store\'s higher throughput on',
    ...EC2_FLEET,
    boots: 10_000,
    windowSeconds: 300,
    quotas: 'higher-throughput',
    targets: { p99Seconds: 5 },
  },
  {
    id: 'e',
    title: 'steady state: the fleet of (b), once booted, re-reading its secrets every 5 minutes, as exec --watch does',
    ...EC2_FLEET,
    boots: 10_000,
    windowSeconds: 300,
    quotas: 'default',
    continues: 'b',
    steady: { intervalSeconds: 300 },
    targets: { ssmReadsPerReread: 0.5 },
  },
];
