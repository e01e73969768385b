// The machine a figure was taken on: every result carries it, because a number without
// its CPU count and Node version says little.

import { cpus, loadavg, totalmem } from 'node:os';

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly memoryGiB: number;
  /** The 1-minute load average when the run started: other work on the machine skews timings. */
  readonly loadAverageAtStart: number;
  /** One line for tables and for each figure: "2 CPUs (AMD EPYC), Node v20.20.2, linux x64". */
  readonly label: string;
}

export function describeMachine(): Machine {
  const list = cpus();
  const cpuModel = list[0]?.model.trim().replace(/\s+/g, ' ') ?? 'unknown CPU';
  const machine = {
    cpus: list.length,
    cpuModel,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
  return { ...machine, label: `${machine.cpus} CPUs (${cpuModel}), Node ${machine.node}, ${machine.platform} ${machine.arch}` };
}
