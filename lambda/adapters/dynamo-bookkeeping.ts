// Per-instance bookkeeping in one on-demand DynamoDB table (partition key `k`): nonce
// bindings (`nonce-<instance>`, created once) and the instance states EventBridge reports
// (`instance-<instance>`, the newest report wins). Parameter Store would spend its shared
// read quota (40/s) on every first login of an instance, and a PutParameter (about 3/s) on
// every binding: a fleet booting at once cannot afford either; on-demand capacity grows with it.

import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Bookkeeping, InstanceStates } from '../ports';
import { dependencyError, errorName } from './aws-errors';

export { DynamoDBClient };

const WHAT = 'DynamoDB';
/** A state report is kept this long after it was written: longer than any role credentials an instance handed out live. */
const STATE_TTL_SECONDS = 7 * 24 * 3600;

export class DynamoBookkeeping implements Bookkeeping, InstanceStates {
  constructor(
    private readonly dynamo: Pick<DynamoDBClient, 'send'>,
    private readonly table: string,
    private readonly nowMs: () => number = Date.now,
  ) {}

  async read(key: string): Promise<string | undefined> {
    return (await this.item(key))?.v?.S;
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    return this.put({ k: { S: key }, v: { S: value } }, { ConditionExpression: 'attribute_not_exists(k)' });
  }

  async state(instanceId: string): Promise<string | undefined> {
    return (await this.item(`instance-${instanceId}`))?.s?.S;
  }

  async record(instanceId: string, state: string, order: number): Promise<void> {
    const expires = Math.floor(this.nowMs() / 1000) + STATE_TTL_SECONDS;
    // A report older than the one stored loses (EventBridge does not promise order): nothing to do.
    await this.put(
      { k: { S: `instance-${instanceId}` }, s: { S: state }, t: { N: String(order) }, x: { N: String(expires) } },
      { ConditionExpression: 'attribute_not_exists(k) OR #t < :t', ExpressionAttributeNames: { '#t': 't' }, ExpressionAttributeValues: { ':t': { N: String(order) } } },
    );
  }

  private async item(key: string) {
    try {
      // Consistent: a binding read right after another container created it must see it.
      const out = await this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { k: { S: key } }, ConsistentRead: true }));
      return out.Item;
    } catch (err) {
      throw dependencyError(err, WHAT, 'dynamodb');
    }
  }

  /** false when the condition failed: another writer got there first, or with a newer report. */
  private async put(item: Record<string, { S: string } | { N: string }>, condition: Omit<ConstructorParameters<typeof PutItemCommand>[0], 'TableName' | 'Item'>): Promise<boolean> {
    try {
      await this.dynamo.send(new PutItemCommand({ TableName: this.table, Item: item, ...condition }));
      return true;
    } catch (err) {
      if (errorName(err) === 'ConditionalCheckFailedException') return false;
      throw dependencyError(err, WHAT, 'dynamodb');
    }
  }
}
