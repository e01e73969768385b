// The fleet simulation's figures as the README's tables (Markdown).

import type { ScenarioResult, SteadyResult } from './simulate';
import type { FleetCheck } from './targets';

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a');

/** The README's tables: one row per boot, one per steady state, the calls per boot, then the checks. */
export function renderFleet(results: readonly ScenarioResult[], steadies: readonly SteadyResult[], checks: readonly FleetCheck[]): string {
  const lines = [
    '| Scenario | Boots | Failed | To all secrets p50 / p99 / max | Last boot done | Floor (busiest quota) | Parameter Store reads per boot | Throttled answers | Lambda containers (peak busy) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const throttledText = (t: Readonly<Record<string, number>>) => Object.entries(t).map(([api, n]) => `${api} ${fmt(n, 0)}`).join(', ') || 'none';
  for (const r of results) {
    const floor = r.floor.calls === 0 ? 'none' : `${fmt(r.floor.seconds, 1)} s (${r.floor.group}: ${fmt(r.floor.calls, 0)} calls at ${fmt(r.floor.perSecond, 0)}/s)`;
    lines.push(
      `| (${r.id}) ${r.title} | ${fmt(r.boots, 0)} | ${fmt(r.failed, 0)} | ${fmt(r.timeToSecrets.p50)} / ${fmt(r.timeToSecrets.p99)} / ${fmt(r.timeToSecrets.max)} s | ${fmt(r.makespanSeconds, 1)} s | ${floor} | ${fmt(r.ssmReadsPerBoot)} | ${throttledText(r.throttled)} | ${fmt(r.lambda.containers, 0)} (${fmt(r.lambda.peakConcurrency, 0)}) |`,
    );
  }
  if (steadies.length > 0) {
    lines.push('', '| Steady state | Watchers | Re-reads in the interval | Failed | Parameter Store reads | per re-read | Throttled answers |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const s of steadies) {
      lines.push(`| (${s.id}) ${s.title} | ${fmt(s.watchers, 0)} | ${fmt(s.rereads, 0)} in ${fmt(s.intervalSeconds, 0)} s | ${fmt(s.failedRereads, 0)} | ${fmt(s.ssmReads, 0)} | ${fmt(s.ssmReadsPerReread, 3)} | ${throttledText(s.throttled)} |`);
    }
  }
  const apis = [...new Set(results.flatMap((r) => Object.keys(r.callsPerBoot)))].sort();
  if (apis.length > 0) {
    lines.push('', `| AWS calls per boot | ${results.map((r) => `(${r.id})`).join(' | ')} |`, `| --- | ${results.map(() => '---').join(' | ')} |`);
    for (const api of apis) lines.push(`| ${api} | ${results.map((r) => fmt(r.callsPerBoot[api] ?? 0, 3)).join(' | ')} |`);
  }
  lines.push('', '| Target | Measured | |', '| --- | --- | --- |');
  for (const c of checks) lines.push(`| (${c.scenario}) ${c.description} ≤ ${fmt(c.target)} | ${fmt(c.measured, 3)} | ${c.met ? 'met' : 'MISSED'} |`);
  return lines.join('\n');
}

