// AWS's request quotas as token buckets, for the shared stand-in (fake-aws.ts). A quota group
// is one bucket shared by the APIs it names; a call needs a token from every group naming its
// API, or it is throttled. `scale` compresses time: refill rates are per simulated second,
// so they are multiplied by it; a burst is a count of requests, the same in any time scale.
//
//   new Quotas(AWS_DEFAULT_QUOTAS, { scale: 10, now: () => clock.ms })

/** One bucket: `rate` tokens a second, holding at most `burst`; it starts full. */
export interface QuotaRule {
  readonly rate: number;
  readonly burst: number;
  /** The APIs that spend it: "SSM.GetParameter", "EC2.DescribeInstances", ... */
  readonly apis: readonly string[];
}

/** Quota group name -> rule. Copy one of the presets and change a group to taste. */
export type QuotaTable = Readonly<Record<string, QuotaRule>>;

const SSM_READS = ['SSM.GetParameter', 'SSM.GetParameters', 'SSM.GetParametersByPath', 'SSM.GetParameterHistory'];

/**
 * AWS's defaults for one account and Region, for what dssss calls. Sources:
 * - Parameter Store: Systems Manager endpoints and quotas, "Max throughput (transactions per
 *   second)": 40 shared by GetParameter, GetParameters, GetParametersByPath (issue 17 counts
 *   GetParameterHistory in it too); PutParameter about 3. DeleteParameter has no published
 *   figure and is left unthrottled.
 * - EC2: "Request throttling for the Amazon EC2 API": non-mutating actions (DescribeInstances)
 *   a bucket of 100 refilled at 20 a second; over it, RequestLimitExceeded.
 * - IAM: no published per-API figure (AWS Security Blog, "How to monitor and query IAM
 *   resources at scale, part 2": IAM throttles each API with token buckets it does not
 *   publish, and the quota is global, shared by every Region and tool of the account). 20 a
 *   second for GetInstanceProfile and GetRole together is a deliberate low guess.
 * - STS: IAM User Guide, "IAM and AWS STS quotas": 600 requests a second per account and
 *   Region, shared by GetCallerIdentity, AssumeRole and the other credential operations.
 * - KMS: Developer Guide, "Request quotas": cryptographic operations on symmetric keys
 *   (Decrypt, GenerateDataKey, ...) share 5,500 a second; 10,000 or 50,000 in the largest
 *   Regions. The stand-in has no Region: the lowest.
 * - DynamoDB, on demand: a new table serves up to 12,000 read request units and 4,000 write
 *   request units a second at once (Developer Guide, "Initial throughput for on-demand
 *   capacity mode"); the per-table ceiling is 40,000 each. A strongly consistent read of up
 *   to 4 KB costs 1 unit, an eventually consistent one half (see `quotaCost` in fake-aws.ts).
 * EventBridge PutEvents is left unthrottled: dssss sends one call per change.
 */
export const AWS_DEFAULT_QUOTAS: QuotaTable = {
  'ssm-read': { rate: 40, burst: 40, apis: SSM_READS },
  'ssm-write': { rate: 3, burst: 3, apis: ['SSM.PutParameter'] },
  'ec2-describe': { rate: 20, burst: 100, apis: ['EC2.DescribeInstances'] },
  'iam-read': { rate: 20, burst: 20, apis: ['IAM.GetInstanceProfile', 'IAM.GetRole'] },
  sts: { rate: 600, burst: 600, apis: ['STS.GetCallerIdentity'] },
  'kms-crypto': { rate: 5_500, burst: 5_500, apis: ['KMS.GenerateDataKey', 'KMS.Decrypt'] },
  'dynamodb-read': { rate: 12_000, burst: 12_000, apis: ['DynamoDB.GetItem'] },
  'dynamodb-write': { rate: 4_000, burst: 4_000, apis: ['DynamoDB.PutItem', 'DynamoDB.DeleteItem'] },
};

/**
 * Parameter Store's "higher throughput" setting: 3,000 a second shared by the reads, and
 * GetParametersByPath held to 100 a second even then (a second bucket it also spends).
 */
export const AWS_HIGHER_THROUGHPUT_QUOTAS: QuotaTable = {
  ...AWS_DEFAULT_QUOTAS,
  'ssm-read': { rate: 3_000, burst: 3_000, apis: SSM_READS },
  'ssm-by-path': { rate: 100, burst: 100, apis: ['SSM.GetParametersByPath'] },
};

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new Error(`a token bucket needs a positive rate and burst (got ${rate}, ${burst})`);
    this.tokens = burst;
    this.last = now();
  }

  /** The tokens there are now, after refilling for the time that passed. */
  available(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    return this.tokens;
  }

  take(cost: number): void {
    this.tokens -= cost;
  }
}

export interface QuotaOptions {
  /** Simulated seconds per real second; refill rates are multiplied by it. Default 1. */
  readonly scale?: number;
  /** Milliseconds, monotonic; default performance.now. Tests step it instead of waiting. */
  readonly now?: () => number;
}

export class Quotas {
  private readonly buckets = new Map<string, TokenBucket>();
  /** API -> the buckets it spends. */
  private readonly byApi = new Map<string, TokenBucket[]>();

  constructor(table: QuotaTable, options: QuotaOptions = {}) {
    const scale = options.scale ?? 1;
    if (!(scale > 0)) throw new Error(`the time scale must be positive (got ${scale})`);
    const now = options.now ?? (() => performance.now());
    for (const [group, rule] of Object.entries(table)) {
      const bucket = new TokenBucket(rule.rate * scale, rule.burst, now);
      this.buckets.set(group, bucket);
      for (const api of rule.apis) this.byApi.set(api, [...(this.byApi.get(api) ?? []), bucket]);
    }
  }

  /** Spends `cost` from every bucket of `api` if each holds it, and says whether it did. */
  take(api: string, cost = 1): boolean {
    const buckets = this.byApi.get(api) ?? [];
    if (buckets.some((bucket) => bucket.available() < cost)) return false;
    for (const bucket of buckets) bucket.take(cost);
    return true;
  }

  /** The tokens a group holds now. */
  available(group: string): number {
    const bucket = this.buckets.get(group);
    if (!bucket) throw new Error(`no quota group ${group}`);
    return bucket.available();
  }
}
