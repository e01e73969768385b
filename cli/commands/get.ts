// `dssss get NAME [--version N] [--output F [--watch ...]]`: the raw value on stdout, or in a
// 0600 file written atomically, rewritten (and a process signalled) when it changes.

import { constants } from 'node:os';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../lambda/adapters/files';
import { clientFor, COMMON, intervalSeconds, isTerminal, parseOptions, versionNumber, type Command, type Io } from '../args';
import { asClientError, type Secret } from '../client';
import { CliError, EXIT } from '../errors';
import { sameSecret, sleep } from '../watch';
import { stopSignal } from './exec';

export const DEFAULT_WATCH_INTERVAL_SECONDS = 300;

export const get: Command = {
  name: 'get',
  usage: 'dssss get NAME [--version N]\ndssss get NAME --output F [--watch [--interval S] [--signal NAME] [--pid PID | --pid-file P]]',
  summary: "print a secret's value (of version N), or write it to a 0600 file; --watch rewrites the file when it changes",
  details: `--output F: the value written atomically to F (a fresh 0600 file renamed into place), nothing on stdout.
--watch: stay running and re-read every --interval seconds (default ${DEFAULT_WATCH_INTERVAL_SECONDS}, each wait 80-100% of it);
  on a change rewrite F and, with --pid PID or --pid-file P, send that process --signal (default SIGHUP).
  A failed re-read is reported and retried at the next interval. SIGINT or SIGTERM ends it (exit 0).`,
  async run(args, io) {
    const { values, positionals } = parseOptions(
      'get',
      args,
      {
        ...COMMON,
        version: { type: 'string' },
        output: { type: 'string' },
        watch: { type: 'boolean' },
        interval: { type: 'string' },
        signal: { type: 'string' },
        pid: { type: 'string' },
        'pid-file': { type: 'string' },
      },
      [1, 1],
    );
    const name = positionals[0]!;
    const version = values.version === undefined ? undefined : versionNumber(values.version as string);
    const output = values.output as string | undefined;
    const watch = values.watch === true;
    if (watch && output === undefined) throw new CliError(EXIT.usage, 'get --watch needs --output F');
    if (watch && version !== undefined) throw new CliError(EXIT.usage, 'get --watch follows the latest version: drop --version');
    if (!watch && (values.interval !== undefined || values.signal !== undefined || values.pid !== undefined || values['pid-file'] !== undefined)) {
      throw new CliError(EXIT.usage, '--interval, --signal, --pid and --pid-file go with --watch');
    }
    const target = watch ? signalTarget(values) : undefined;
    const interval = intervalSeconds(values.interval, DEFAULT_WATCH_INTERVAL_SECONDS);
    const client = clientFor(values, io);

    let secret = await client.get(name, version === undefined ? {} : { version });
    if (output === undefined) {
      io.stdout.write(secret.value);
      return EXIT.ok;
    }
    await writeFileAtomic(output, secret.value, 0o600);
    if (!watch) return EXIT.ok;
    io.stderr.write(`dssss: wrote ${output} (${name} version ${secret.version}); watching every ${interval} s\n`);

    const stop = stopSignal(io);
    while (!stop.signal.aborted) {
      await sleep(interval * 1000 * (0.8 + 0.2 * Math.random()), stop.signal);
      if (stop.signal.aborted) break;
      let next: Secret;
      try {
        next = await client.get(name, { forceFetch: false });
      } catch (err) {
        const e = asClientError(err);
        io.stderr.write(`dssss: re-reading ${name} failed: ${e.message} (${e.code}); trying again in ${interval} s\n`);
        continue;
      }
      if (sameSecret(secret, next)) continue;
      secret = next;
      await writeFileAtomic(output, secret.value, 0o600);
      io.stderr.write(`dssss: ${name} changed: rewrote ${output} (version ${secret.version})\n`);
      if (target !== undefined) await notify(target, io);
    }
    stop.dispose();
    if (isTerminal(io.stderr)) io.stderr.write('\n');
    return EXIT.ok;
  },
};

interface SignalTarget {
  readonly signal: NodeJS.Signals;
  readonly pid?: number;
  readonly pidFile?: string;
}

function signalTarget(values: Record<string, unknown>): SignalTarget | undefined {
  const pid = values.pid as string | undefined;
  const pidFile = values['pid-file'] as string | undefined;
  const signal = parseSignal((values.signal as string | undefined) ?? 'SIGHUP');
  if (pid !== undefined && pidFile !== undefined) throw new CliError(EXIT.usage, '--pid or --pid-file, not both');
  if (pid === undefined && pidFile === undefined) {
    if (values.signal !== undefined) throw new CliError(EXIT.usage, '--signal needs --pid PID or --pid-file P');
    return undefined;
  }
  if (pid !== undefined && !/^[1-9][0-9]{0,9}$/.test(pid)) throw new CliError(EXIT.usage, '--pid: a process id');
  return { signal, ...(pid !== undefined ? { pid: Number(pid) } : { pidFile: pidFile! }) };
}

/** `HUP`, `SIGHUP` or `sighup` -> SIGHUP; anything Node does not know is refused. */
export function parseSignal(given: string): NodeJS.Signals {
  const name = (given.toUpperCase().startsWith('SIG') ? given.toUpperCase() : `SIG${given.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in constants.signals)) throw new CliError(EXIT.usage, `unknown signal ${given.slice(0, 20)}`);
  return name;
}

async function notify(target: SignalTarget, io: Io): Promise<void> {
  let pid = target.pid;
  if (pid === undefined) {
    const text = (await readFile(target.pidFile!, 'utf8').catch(() => '')).trim();
    if (!/^[1-9][0-9]{0,9}$/.test(text)) {
      io.stderr.write(`dssss: ${target.pidFile} holds no process id: nobody signalled\n`);
      return;
    }
    pid = Number(text);
  }
  try {
    process.kill(pid, target.signal);
    io.stderr.write(`dssss: sent ${target.signal} to ${pid}\n`);
  } catch (err) {
    io.stderr.write(`dssss: cannot signal ${pid} (${(err as NodeJS.ErrnoException).code ?? 'error'})\n`);
  }
}
