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

/** The state change an event reports, or undefined when it is not one this function records. */
export function parseStateChange(event: unknown): StateChange | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as { source?: unknown; 'detail-type'?: unknown; time?: unknown; detail?: { 'instance-id'?: unknown; state?: unknown } };
  if (e.source !== 'aws.ec2' || e['detail-type'] !== 'EC2 Instance State-change Notification') return undefined;
  const instanceId = e.detail?.['instance-id'];
  const state = e.detail?.state;
  const atMs = typeof e.time === 'string' ? Date.parse(e.time) : NaN;
  if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId) || !isInstanceState(state) || !Number.isFinite(atMs)) return undefined;
  return { instanceId, state, atMs };
}

/** Records the change; anything else is logged (without the event) and dropped. A store failure throws, so EventBridge retries. */
export async function recordStateChange(event: unknown, states: InstanceStates): Promise<StateChange | undefined> {
  const change = parseStateChange(event);
  if (change === undefined) {
    console.error(JSON.stringify({ level: 'warn', message: 'not an EC2 instance state-change event; ignored' }));
    return undefined;
  }
  await states.record(change.instanceId, change.state, stateOrder(change.state, change.atMs));
  return change;
}

let states: InstanceStates | undefined;

export const handler = async (event: unknown): Promise<void> => {
  states ??= new DynamoBookkeeping(new DynamoDBClient(awsClientOptions()), loadInstanceEventsConfig().table);
  const change = await recordStateChange(event, states);
  if (change) console.log(JSON.stringify({ level: 'info', message: 'instance state recorded', instanceId: change.instanceId, state: change.state }));
};
