// The instance-events function: EventBridge hands it EC2's "Instance State-change
// Notification" events, and it records each state in the bookkeeping table, where IAM logins
// made with an instance's role credentials look it up (core/replay.ts `livenessByEvents`).
// A function of its own, so it may write instance states and the API function may not.

import { awsClientOptions } from './adapters/aws-client';
import { DynamoBookkeeping, DynamoDBClient } from './adapters/dynamo-bookkeeping';
import { loadInstanceEventsConfig } from './config';
import { INSTANCE_ID, isInstanceState, stateOrder, type InstanceState } from './core/replay';
import type { InstanceStates } from './ports';

export interface StateChange {
  readonly instanceId: string;
  readonly state: InstanceState;
  readonly atMs: number;
}

/** How far ahead of this function's clock a report may be dated: the newest report wins, so a later date would pin a state for good. */
const MAX_CLOCK_SKEW_MS = 60_000;

/** Which events are this deployment's to record, and what time it is. */
export interface EventScope {
  readonly account: string;
  readonly nowMs: number;
}

/** The state change an event reports, or undefined when it is not one this function records. */
export function parseStateChange(event: unknown, scope: EventScope): StateChange | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as { source?: unknown; 'detail-type'?: unknown; account?: unknown; time?: unknown; detail?: { 'instance-id'?: unknown; state?: unknown } };
  if (e.source !== 'aws.ec2' || e['detail-type'] !== 'EC2 Instance State-change Notification' || e.account !== scope.account) return undefined;
  const instanceId = e.detail?.['instance-id'];
  const state = e.detail?.state;
  const atMs = typeof e.time === 'string' ? Date.parse(e.time) : NaN;
  if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId) || !isInstanceState(state) || !Number.isFinite(atMs)) return undefined;
  if (atMs > scope.nowMs + MAX_CLOCK_SKEW_MS) return undefined;
  return { instanceId, state, atMs };
}

/**
 * Records the change; anything else is logged (without the event) and dropped. A store
 * failure throws: Lambda retries the event, then hands it to the dead-letter queue.
 */
export async function recordStateChange(event: unknown, states: InstanceStates, scope: EventScope): Promise<StateChange | undefined> {
  const change = parseStateChange(event, scope);
  if (change === undefined) {
    console.error(JSON.stringify({ level: 'warn', message: 'not an EC2 instance state-change event; ignored' }));
    return undefined;
  }
  await states.record(change.instanceId, change.state, stateOrder(change.state, change.atMs));
  return change;
}

let states: InstanceStates | undefined;
let account: string | undefined;

export const handler = async (event: unknown): Promise<void> => {
  if (states === undefined || account === undefined) {
    const config = loadInstanceEventsConfig();
    states = new DynamoBookkeeping(new DynamoDBClient(awsClientOptions()), config.table);
    account = config.account;
  }
  const change = await recordStateChange(event, states, { account, nowMs: Date.now() });
  if (change) console.log(JSON.stringify({ level: 'info', message: 'instance state recorded', instanceId: change.instanceId, state: change.state }));
};
