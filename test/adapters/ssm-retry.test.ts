// Throttling and failures against a real SSM client (retry middleware included) with the
// function's own client options, served by the shared stand-in on loopback: a throttle goes
// back to the caller at once as a 429 with Retry-After; a 5xx is retried.

import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientOptions, MAX_ATTEMPTS } from '../../lambda/adapters/aws-client';
import { SsmSecretStore } from '../../lambda/adapters/ssm-store';
import { FakeAws, type AwsServer } from '../support/fake-aws';

const fake = new FakeAws({ mock: false });
let aws: AwsServer;

beforeAll(async () => {
  aws = await fake.serve();
  await new SsmSecretStore(client(), '/dssss/').append('x', 'record', 0);
});
afterAll(() => aws.close());
beforeEach(() => fake.resetCounts());

function client() {
  return new SSMClient({ ...awsClientOptions(), endpoint: aws.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}

const requests = () => fake.counts()['SSM.GetParameter']?.requests ?? 0;

describe('Parameter Store throttling and failures, with the function\'s client options', () => {
  it('answers a throttle at once with a 429 and a Retry-After: no retry holds the container', async () => {
    fake.arm('throttle', 0, 10);
    await expect(new SsmSecretStore(client(), '/dssss/').latest('x')).rejects.toMatchObject({ code: 'rate_limited', status: 429, retryAfter: expect.any(Number) });
    expect(requests()).toBe(1);
    fake.disarm();
  });

  it('retries a 5xx within its attempts: two failures, then the read', async () => {
    fake.arm('failure', 0, 2);
    expect(await new SsmSecretStore(client(), '/dssss/').latest('x')).toEqual({ record: 'record', seq: 1 });
    expect(requests()).toBe(MAX_ATTEMPTS);
  });
});
