// The bookkeeping table's exact calls (consistent reads, the two conditional puts) and how
// its errors read; the same adapter runs against moto_server in test/aws/bookkeeping.test.ts.

import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoBookkeeping } from '../../lambda/adapters/dynamo-bookkeeping';
import { DssssError } from '../../lambda/core/errors';
import { parseStateChange } from '../../lambda/instance-events';
import { stateOrder } from '../../lambda/core/replay';

const dynamo = mockClient(DynamoDBClient);
const err = (name: string) => Object.assign(new Error(name), { name, $metadata: {} });
const NOW = Date.parse('2026-12-01T00:00:00Z');
const table = () => new DynamoBookkeeping(new DynamoDBClient({ region: 'us-east-1' }), 'dssss-bookkeeping', () => NOW);

beforeEach(() => dynamo.reset());

describe('DynamoDB bookkeeping', () => {
  it('reads a binding with a consistent read, so one made by another container a moment ago is seen', async () => {
    dynamo.on(GetItemCommand).resolves({ Item: { k: { S: 'nonce-i-0123456789abcdef0' }, v: { S: '{"v":1}' } } });
    expect(await table().read('nonce-i-0123456789abcdef0')).toBe('{"v":1}');
    expect(dynamo.commandCalls(GetItemCommand)[0]!.args[0].input).toEqual({
      TableName: 'dssss-bookkeeping',
      Key: { k: { S: 'nonce-i-0123456789abcdef0' } },
      ConsistentRead: true,
    });
    dynamo.on(GetItemCommand).resolves({});
    expect(await table().read('nonce-i-0123456789abcdef1')).toBeUndefined();
  });

  it('creates a binding only where none exists, and says false when another got there first', async () => {
    dynamo.on(PutItemCommand).resolvesOnce({}).rejectsOnce(err('ConditionalCheckFailedException'));
    expect(await table().createIfAbsent('nonce-i-1', 'mine')).toBe(true);
    expect(await table().createIfAbsent('nonce-i-1', 'theirs')).toBe(false);
    expect(dynamo.commandCalls(PutItemCommand)[0]!.args[0].input).toEqual({
      TableName: 'dssss-bookkeeping',
      Item: { k: { S: 'nonce-i-1' }, v: { S: 'mine' } },
      ConditionExpression: 'attribute_not_exists(k)',
    });
  });

  it('records a state only over an older report, with an expiry a week out', async () => {
    dynamo.on(PutItemCommand).resolvesOnce({}).rejectsOnce(err('ConditionalCheckFailedException'));
    await table().record('i-1', 'terminated', 42);
    await table().record('i-1', 'running', 41); // older: the condition refuses it, and that is no error
    expect(dynamo.commandCalls(PutItemCommand)[0]!.args[0].input).toEqual({
      TableName: 'dssss-bookkeeping',
      Item: { k: { S: 'instance-i-1' }, s: { S: 'terminated' }, t: { N: '42' }, x: { N: String(NOW / 1000 + 7 * 24 * 3600) } },
      ConditionExpression: 'attribute_not_exists(k) OR #t < :t',
      ExpressionAttributeNames: { '#t': 't' },
      ExpressionAttributeValues: { ':t': { N: '42' } },
    });
    dynamo.on(GetItemCommand).resolves({ Item: { k: { S: 'instance-i-1' }, s: { S: 'terminated' }, t: { N: '42' } } });
    expect(await table().state('i-1')).toBe('terminated');
  });

  it.each([
    ['ThrottlingException', 'rate_limited'],
    ['ProvisionedThroughputExceededException', 'rate_limited'],
    ['AccessDeniedException', 'misconfigured'],
    ['ResourceNotFoundException', 'unavailable'],
    ['InternalServerError', 'unavailable'],
  ])('turns %s into %s, naming DynamoDB for metrics', async (name, code) => {
    dynamo.on(GetItemCommand).rejects(err(name));
    const failure = await table().read('nonce-i-1').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(DssssError);
    expect(failure).toMatchObject({ code, detail: { service: 'dynamodb', awsCode: name } });
  });
});

describe('EC2 state-change events', () => {
  const event = (detail: object, extra: object = {}) => ({
    version: '0',
    source: 'aws.ec2',
    'detail-type': 'EC2 Instance State-change Notification',
    account: '111122223333',
    time: '2026-12-01T10:00:05Z',
    detail,
    ...extra,
  });
  const scope = { account: '111122223333', nowMs: Date.parse('2026-12-01T10:00:30Z') };

  it('reads the instance, the state and the time', () => {
    expect(parseStateChange(event({ 'instance-id': 'i-0123456789abcdef0', state: 'shutting-down' }), scope)).toEqual({
      instanceId: 'i-0123456789abcdef0',
      state: 'shutting-down',
      atMs: Date.parse('2026-12-01T10:00:05Z'),
    });
  });

  it.each([
    ['another source', event({ 'instance-id': 'i-0123456789abcdef0', state: 'running' }, { source: 'dssss' })],
    ['another detail type', event({ 'instance-id': 'i-0123456789abcdef0', state: 'running' }, { 'detail-type': 'EC2 Spot Instance Interruption Warning' })],
    ['a state EC2 does not have', event({ 'instance-id': 'i-0123456789abcdef0', state: 'hibernating' })],
    ['a malformed instance id', event({ 'instance-id': 'i-../../x', state: 'running' })],
    ['no time', event({ 'instance-id': 'i-0123456789abcdef0', state: 'running' }, { time: undefined })],
    ['not an object', 'running'],
    ["another account's instance", event({ 'instance-id': 'i-0123456789abcdef0', state: 'running' }, { account: '444455556666' })],
    ['a report dated more than a minute ahead (the newest report wins: it would pin the state for good)', event({ 'instance-id': 'i-0123456789abcdef0', state: 'running' }, { time: '2099-01-01T00:00:00Z' })],
  ])('ignores %s', (_, input) => {
    expect(parseStateChange(input, scope)).toBeUndefined();
  });

  it('orders reports by time, and by lifecycle within one second', () => {
    const at = Date.parse('2026-12-01T10:00:05Z');
    expect(stateOrder('running', at)).toBeLessThan(stateOrder('pending', at + 1000));
    expect(stateOrder('shutting-down', at + 400)).toBeLessThan(stateOrder('terminated', at));
    expect(stateOrder('pending', at)).toBeLessThan(stateOrder('running', at + 999));
  });
});
