// How the client waits out a throttled or briefly unreachable server (and IMDS at boot):
// capped exponential backoff with full jitter, never less than the server's Retry-After,
// within a total budget (`--retry-for`, DSSSS_RETRY_FOR). A fleet that boots at once
// spreads its retries instead of returning in step.

/** Answers worth another try: throttled, or the server or API Gateway briefly unavailable. */
export const RETRIED_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** The default budget, in seconds: long enough to ride out a fleet boot's throttling. */
export const DEFAULT_RETRY_FOR_SECONDS = 60;
const BASE_MS = 250;
const CAP_MS = 10_000;

export interface RetryTiming {
  /** Total time the retries may take, in ms; 0: never retry. */
  readonly forMs: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly deadline: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(timing: RetryTiming) {
    this.sleep = timing.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = timing.random ?? Math.random;
    this.now = timing.now ?? Date.now;
    this.deadline = this.now() + timing.forMs;
  }

  /** Waits before the next attempt and says true; false, at once, when that would overrun the budget. */
  async next(retryAfterMs?: number): Promise<boolean> {
    const jitter = this.random() * Math.min(CAP_MS, BASE_MS * 2 ** this.attempt);
    const delay = Math.max(jitter, retryAfterMs ?? 0);
    if (this.now() + delay > this.deadline) return false;
    this.attempt++;
    await this.sleep(delay);
    return true;
  }
}

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** `--retry-for` or DSSSS_RETRY_FOR, in seconds (a non-negative number). */
export function parseRetryFor(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : Number.NaN;
}
