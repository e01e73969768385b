// Change events to EventBridge: one PutEvents entry per change, source `dssss`, detail type
// `dssss change`, the detail names and numbers only (never a value or token).

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DssssError } from '../core/errors';
import type { ChangeEvent, EventPublisher } from '../ports';
import { dependencyError } from './aws-errors';

export { EventBridgeClient };

export const EVENT_SOURCE = 'dssss';
export const EVENT_DETAIL_TYPE = 'dssss change';

export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly events: Pick<EventBridgeClient, 'send'>,
    private readonly bus: string,
    private readonly deployment: string,
  ) {}

  async publish(changes: readonly ChangeEvent[]): Promise<void> {
    if (changes.length === 0) return;
    let failed: number | undefined;
    try {
      const out = await this.events.send(
        new PutEventsCommand({
          Entries: changes.map((change) => ({
            EventBusName: this.bus,
            Source: EVENT_SOURCE,
            DetailType: EVENT_DETAIL_TYPE,
            Detail: JSON.stringify({ deployment: this.deployment, ...change }),
          })),
        }),
      );
      failed = out.FailedEntryCount;
    } catch (err) {
      throw dependencyError(err, 'EventBridge', 'events');
    }
    if (failed) throw new DssssError('unavailable', `EventBridge refused ${failed} event(s)`, 1, { service: 'events' });
  }
}
