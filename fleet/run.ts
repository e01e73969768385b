// `npm run fleet`: the fleet boots of issue 17, simulated (fleet/simulate.ts), one scenario
// after another; their figures go to bench/fleet-results.json and are printed as the tables
// the README's "A fleet boots at once" shows. `-- --check` exits 1 when a target is missed;
// `-- --only=a,c` runs some scenarios; `-- --compression=K` (default 1: none) compresses time;
// `-- --fraction=F` shrinks every fleet (a rehearsal: nothing is written, --check refuses it);
// `-- --bookkeeping=parameter-store` runs without the bookkeeping table, for comparison.

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { describeMachine } from '../bench/machine';
import { SCENARIOS, type ScenarioId } from './scenarios';
import { AWS_ROUND_TRIP_MS, LAMBDA_INIT_MS, simulate, type ScenarioResult, type SteadyResult } from './simulate';
import { renderFleet } from './report';
import { judgeFleet } from './targets';

const RESULTS = new URL('../bench/fleet-results.json', import.meta.url);
const DEFAULT_COMPRESSION = 1;

class UsageError extends Error {}

async function main(): Promise<number> {
  let values: { check?: boolean; only?: string; compression?: string; fraction?: string; bookkeeping?: string };
  try {
    ({ values } = parseArgs({
      options: {
        check: { type: 'boolean', default: false },
        only: { type: 'string' },
        compression: { type: 'string' },
        fraction: { type: 'string' },
        bookkeeping: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; usage: npm run fleet [-- --check] [-- --only=a,b,c,d,e] [-- --compression=K] [-- --fraction=F]`);
  }
  const ids = SCENARIOS.map((s) => s.id);
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((s) => !(ids as string[]).includes(s)) ?? [];
  if (unknown.length > 0) throw new UsageError(`--only: unknown scenario ${unknown.join(', ')}; choose from ${ids.join(', ')}`);
  const compression = values.compression === undefined ? DEFAULT_COMPRESSION : Number(values.compression);
  if (!(compression >= 1 && compression <= 20)) throw new UsageError('--compression: a number from 1 to 20');
  const fraction = values.fraction === undefined ? 1 : Number(values.fraction);
  if (!(fraction > 0 && fraction <= 1)) throw new UsageError('--fraction: a number above 0, at most 1');
  if (values.check && fraction !== 1) throw new UsageError('--check judges whole fleets: leave --fraction out');
  const bookkeeping = values.bookkeeping ?? 'table';
  if (bookkeeping !== 'table' && bookkeeping !== 'parameter-store') throw new UsageError('--bookkeeping: table or parameter-store');
  if (values.check && bookkeeping !== 'table') throw new UsageError('--check judges the design as it ships: leave --bookkeeping out');
  const comparison = fraction !== 1 || bookkeeping !== 'table';

  const machine = describeMachine();
  const log = (line: string) => console.log(line);
  log(
    `dssss fleet simulation on ${machine.label}; time compressed ${compression}x${fraction === 1 ? '' : `; fleets at ${fraction} of their size (a rehearsal)`}` +
      (bookkeeping === 'table' ? '' : '; per-instance bookkeeping in Parameter Store and EC2 (a comparison)'),
  );
  const selected = new Set<ScenarioId>(only === undefined ? ids : (only as ScenarioId[]));
  const results: ScenarioResult[] = [];
  const steadies: SteadyResult[] = [];
  for (const scenario of SCENARIOS) {
    // A scenario that goes on with another's fleet runs with it.
    const follower = SCENARIOS.find((s) => s.continues === scenario.id && selected.has(s.id));
    if (scenario.continues !== undefined || (!selected.has(scenario.id) && follower === undefined)) continue;
    log(`\n(${scenario.id}) ${scenario.title}${follower ? `\n(${follower.id}) ${follower.title}` : ''}`);
    const { boot, steady } = await simulate(scenario, { compression, fraction, log, bookkeeping }, follower);
    log(`  done in ${boot.realSeconds + (steady?.realSeconds ?? 0)} s of real time`);
    if (selected.has(scenario.id)) results.push(boot);
    if (steady) steadies.push(steady);
  }
  const checks = judgeFleet(results, steadies);
  log(`\n${renderFleet(results, steadies, checks)}`);
  const missed = checks.filter((c) => !c.met);
  if (!comparison && only === undefined) {
    await writeFile(
      RESULTS,
      `${JSON.stringify({ machine, date: new Date().toISOString(), compression, assumedRoundTripMs: AWS_ROUND_TRIP_MS, lambdaInitMs: LAMBDA_INIT_MS, results, steadies, checks }, null, 2)}\n`,
    );
    log('figures written to bench/fleet-results.json');
  }
  if (values.check) {
    if (missed.length > 0) {
      for (const c of missed) console.error(`missed: (${c.scenario}) ${c.description}: ${c.measured} against at most ${c.target}`);
      return 1;
    }
    log('every target met');
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Keep-alive sockets of the clients' fetch would hold the process a while longer.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    console.error(err instanceof UsageError ? `npm run fleet: ${err.message}` : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
