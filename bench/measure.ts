// Timing helpers shared by the suites: a warm-up-then-measure loop with per-operation
// samples, and nearest-rank percentiles.

import { performance } from 'node:perf_hooks';

export interface Samples {
  /** Every measured duration, in microseconds, in the order taken. */
  readonly micros: Float64Array;
  /** Wall time of the measured phase, seconds. */
  readonly seconds: number;
}

export interface Summary {
  readonly iterations: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly maxUs: number;
  readonly opsPerSec: number;
}

export interface LoopOptions {
  /** Calls made and thrown away first (JIT, caches, first-use allocations). */
  readonly warmup: number;
  /** At most this many measured calls... */
  readonly iterations: number;
  /** ...or until this much measured time has passed, whichever comes first. */
  readonly maxSeconds: number;
}

/**
 * Calls `operation` one at a time (never overlapping) and times each call. A synchronous
 * operation is timed without an `await`, so the figure holds no microtask hop of ours.
 */
export async function timeLoop(operation: () => unknown, options: LoopOptions): Promise<Samples> {
  for (let i = 0; i < options.warmup; i++) {
    const result = operation();
    if (result instanceof Promise) await result;
  }
  const micros = new Float64Array(options.iterations);
  const deadline = performance.now() + options.maxSeconds * 1000;
  const start = performance.now();
  let count = 0;
  while (count < options.iterations) {
    const t0 = performance.now();
    const result = operation();
    if (result instanceof Promise) await result;
    const t1 = performance.now();
    micros[count++] = (t1 - t0) * 1000;
    if (t1 > deadline) break;
  }
  return { micros: micros.subarray(0, count), seconds: (performance.now() - start) / 1000 };
}

/** Nearest-rank percentile of `values` (need not be sorted); NaN when empty. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(values: ArrayLike<number>): number {
  return percentile(values, 50);
}

export function summarize(samples: Samples): Summary {
  const { micros, seconds } = samples;
  let total = 0;
  let max = 0;
  for (const value of micros) {
    total += value;
    if (value > max) max = value;
  }
  return {
    iterations: micros.length,
    p50Us: percentile(micros, 50),
    p99Us: percentile(micros, 99),
    meanUs: micros.length === 0 ? Number.NaN : total / micros.length,
    maxUs: max,
    opsPerSec: micros.length / seconds,
  };
}
