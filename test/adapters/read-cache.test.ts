import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, vi } from 'vitest';
import { emfRecorder } from '../../lambda/adapters/emf';
import { EventBridgePublisher } from '../../lambda/adapters/eventbridge-events';
import { FileSecretStore } from '../../lambda/adapters/file-store';
import { CachedSecretStore } from '../../lambda/adapters/read-cache';
import { METRIC, METRICS_NAMESPACE } from '../../lambda/metrics';

const clock = { time: 1_000_000, now() { return this.time; } };

async function cached() {
  const store = new FileSecretStore(await mkdtemp(join(tmpdir(), 'dssss-cache-')));
  const latest = vi.spyOn(store, 'latest');
  const list = vi.spyOn(store, 'list');
  return { store, latest, list, cache: new CachedSecretStore(store, 5000, clock) };
}

describe('the per-container read cache', () => {
  it('serves repeated reads from memory for its lifetime, then reads again', async () => {
    const { store, latest, cache } = await cached();
    await store.append('a', 'r1', 0);
    expect(await cache.latest('a')).toEqual({ record: 'r1', seq: 1 });
    expect(await cache.latest('a')).toEqual({ record: 'r1', seq: 1 });
    expect(latest).toHaveBeenCalledTimes(1);
    await store.append('a', 'r2', 1); // another container's write: unseen until the entry expires
    expect((await cache.latest('a'))?.record).toBe('r1');
    clock.time += 5000;
    expect((await cache.latest('a'))?.record).toBe('r2');
    expect(cache.counts).toEqual({ hits: 2, misses: 2 });
  });

  it('shares one call among concurrent misses, and reads fresh when asked', async () => {
    const { store, latest, cache } = await cached();
    await store.append('a', 'r1', 0);
    await Promise.all(Array.from({ length: 10 }, () => cache.latest('a')));
    expect(latest).toHaveBeenCalledTimes(1);
    await cache.latest('a', { fresh: true });
    expect(latest).toHaveBeenCalledTimes(2);
  });

  it('drops what its own writes and purges touch, listing pages included', async () => {
    const { list, cache } = await cached();
    await cache.append('p/a', 'r1', 0);
    expect((await cache.list('p/', 10)).entries.map((e) => e.record)).toEqual(['r1']);
    await cache.append('p/a', 'r2', 1);
    expect((await cache.latest('p/a'))?.record).toBe('r2');
    expect((await cache.list('p/', 10)).entries.map((e) => e.record)).toEqual(['r2']);
    expect(list).toHaveBeenCalledTimes(2);
    await cache.purge('p/a');
    expect(await cache.latest('p/a')).toBeUndefined();
  });

  it('does not keep a failure', async () => {
    const { store, latest, cache } = await cached();
    latest.mockRejectedValueOnce(new Error('down'));
    await expect(cache.latest('a')).rejects.toThrow('down');
    await store.append('a', 'r1', 0);
    expect((await cache.latest('a'))?.record).toBe('r1');
  });
});

describe('metrics in Embedded Metric Format', () => {
  it('writes one line per request with the contract\'s names, refusals by code, throttles by service', () => {
    const lines: string[] = [];
    const record = emfRecorder('prod', undefined, undefined, (line) => lines.push(line));
    record({ operation: 'login', outcome: 'denied', status: 401, code: 'invalid_credentials', reason: 'nonce_mismatch', latencyMs: 3 });
    record({ operation: 'get', outcome: 'refused', status: 429, code: 'rate_limited', service: 'ssm', latencyMs: 9 });
    const [login, get] = lines.map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[]; Dimensions: string[][] }[] } });
    expect(login!._aws.CloudWatchMetrics[0]!.Namespace).toBe(METRICS_NAMESPACE);
    expect(login!._aws.CloudWatchMetrics[0]!.Dimensions).toContainEqual(['Deployment', 'Reason']);
    expect(login).toMatchObject({ Deployment: 'prod', Code: 'invalid_credentials', Reason: 'nonce_mismatch', Method: 'ec2', [METRIC.refusals]: 1, [METRIC.loginFailures]: 1, [METRIC.logins]: 1 });
    expect(get).toMatchObject({ Service: 'ssm', [METRIC.dependencyThrottles]: 1, [METRIC.requests]: 1 });
    expect(get!._aws.CloudWatchMetrics[0]!.Dimensions).toContainEqual(['Deployment', 'Service']);
  });

  it('counts a refused document login on a secret route as a refused login, and a refused token as no login', () => {
    const lines: string[] = [];
    const record = emfRecorder('prod', undefined, undefined, (line) => lines.push(line));
    record({ operation: 'get', outcome: 'denied', status: 401, code: 'invalid_credentials', auth: 'ec2', latencyMs: 2 });
    record({ operation: 'get', outcome: 'denied', status: 401, code: 'invalid_credentials', auth: 'token', latencyMs: 2 });
    const [document, token] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(document![METRIC.loginFailures]).toBe(1);
    expect(token![METRIC.loginFailures]).toBeUndefined();
  });

  it('counts change events that were not published, once each, on the next request', () => {
    const lines: string[] = [];
    const events = { count: 0 };
    const record = emfRecorder('prod', undefined, events, (line) => lines.push(line));
    const put = { operation: 'put', outcome: 'ok', status: 200, latencyMs: 1 } as const;
    record(put);
    events.count = 2;
    record(put);
    record(put);
    expect(lines.map((l) => (JSON.parse(l) as Record<string, unknown>)[METRIC.eventPublishFailures])).toEqual([undefined, 2, undefined]);
  });
});

describe('change events to EventBridge', () => {
  it('sends one entry per change, names and numbers only', async () => {
    const events = mockClient(EventBridgeClient);
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
    const publisher = new EventBridgePublisher(new EventBridgeClient({ region: 'us-east-1' }), 'dssss-bus', 'prod');
    await publisher.publish([{ operation: 'put', name: 'app/db', version: 3, actor: { role: 'web', account: '111122223333', principal: 'i-1' }, time: 't' }]);
    const input = events.commandCalls(PutEventsCommand)[0]!.args[0].input;
    expect(input.Entries).toEqual([
      {
        EventBusName: 'dssss-bus',
        Source: 'dssss',
        DetailType: 'dssss change',
        Detail: JSON.stringify({ deployment: 'prod', operation: 'put', name: 'app/db', version: 3, actor: { role: 'web', account: '111122223333', principal: 'i-1' }, time: 't' }),
      },
    ]);
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 1 });
    await expect(publisher.publish([{ operation: 'purge', name: 'x', actor: { role: 'a', account: '1', principal: 'p' }, time: 't' }])).rejects.toMatchObject({ code: 'unavailable' });
    events.restore();
  });
});
