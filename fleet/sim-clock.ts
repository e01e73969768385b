// Simulated time for the fleet simulation: it starts at the real time of the start and runs
// `k` times faster. One start, shared by every thread (the clients' and the containers').

import type { Clock } from '../lambda/ports';

export interface SimClockStart {
  readonly k: number;
  /** performance.timeOrigin + performance.now() at the start: the same instant in every thread. */
  readonly realStart: number;
  /** Date.now() at the start. */
  readonly simStart: number;
}

export class SimClock implements Clock {
  private constructor(private readonly start: SimClockStart) {}

  static begin(k: number): SimClock {
    return new SimClock({ k, realStart: performance.timeOrigin + performance.now(), simStart: Date.now() });
  }

  /** The same clock, in another thread. */
  static resume(start: SimClockStart): SimClock {
    return new SimClock(start);
  }

  get k(): number {
    return this.start.k;
  }

  get shared(): SimClockStart {
    return this.start;
  }

  now(): number {
    return this.start.simStart + (performance.timeOrigin + performance.now() - this.start.realStart) * this.start.k;
  }

  /** Waits `ms` simulated milliseconds. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms) / this.start.k));
  }
}
