// Issue 17's targets for the fleet simulation, judged against a run's figures. Every one is
// checked exactly: no margin, since each is a ceiling the design must stay under.

import { SCENARIOS } from './scenarios';
import type { ScenarioResult, SteadyResult } from './simulate';

export interface FleetCheck {
  readonly scenario: string;
  readonly description: string;
  readonly target: number;
  readonly measured: number;
  readonly met: boolean;
}

export function judgeFleet(results: readonly ScenarioResult[], steadies: readonly SteadyResult[] = []): FleetCheck[] {
  const checks: FleetCheck[] = [];
  const add = (scenario: string, description: string, target: number, measured: number) =>
    checks.push({ scenario, description, target, measured, met: Number.isFinite(measured) && measured <= target });
  for (const result of results) {
    const { targets, kind } = SCENARIOS.find((s) => s.id === result.id)!;
    add(result.id, 'failed boots', 0, result.failed);
    if (targets.p99Seconds !== undefined) add(result.id, 'time to all secrets, p99 (s)', targets.p99Seconds, result.timeToSecrets.p99);
    if (targets.ssmReadsPerBoot !== undefined) add(result.id, 'Parameter Store reads per boot', targets.ssmReadsPerBoot, result.ssmReadsPerBoot);
    if (kind === 'ec2') {
      add(result.id, 'DescribeInstances per instance', 1, result.describeInstancesPerBoot);
      // Never the reason a boot fails: EC2 never refused a call of the boot.
      add(result.id, 'DescribeInstances throttled', 0, result.throttled['EC2.DescribeInstances'] ?? 0);
    }
  }
  for (const steady of steadies) {
    const { targets } = SCENARIOS.find((s) => s.id === steady.id)!;
    add(steady.id, 'failed re-reads', 0, steady.failedRereads);
    if (targets.ssmReadsPerReread !== undefined) add(steady.id, 'Parameter Store reads per re-read', targets.ssmReadsPerReread, steady.ssmReadsPerReread);
  }
  return checks;
}
