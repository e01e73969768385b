import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  ParameterAlreadyExists,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SsmSecretStore, STANDARD_TIER_LIMIT } from '../../lambda/adapters/ssm-store';

const ssm = mockClient(SSMClient);
const store = new SsmSecretStore(new SSMClient({ region: 'us-east-1' }), '/dssss/');
const meta = { $metadata: {} };

function awsError(name: string): Error {
  return Object.assign(new Error(`${name} from AWS`), { name, $metadata: {} });
}

beforeEach(() => ssm.reset());

describe('Parameter Store secret store', () => {
  it('reads the latest record by path, with its version as its position', async () => {
    ssm.on(GetParameterCommand, { Name: '/dssss/secrets/app/db' }).resolves({ Parameter: { Value: 'r3', Version: 3 } });
    expect(await store.latest('app/db')).toEqual({ record: 'r3', seq: 3 });
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(1);
  });

  it('reads a missing parameter as absent', async () => {
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'nope', $metadata: {} }));
    expect(await store.latest('x')).toBeUndefined();
    ssm.on(GetParameterHistoryCommand).rejects(new ParameterNotFound({ message: 'nope', $metadata: {} }));
    expect(await store.history('x')).toEqual([]);
  });

  it('reads history from every GetParameterHistory page, oldest first', async () => {
    ssm
      .on(GetParameterHistoryCommand)
      .resolvesOnce({ Parameters: [{ Value: 'r2', Version: 2 }, { Value: 'r1', Version: 1 }], NextToken: 't' })
      .resolvesOnce({ Parameters: [{ Value: 'r3', Version: 3 }] });
    expect(await store.history('app/db')).toEqual([
      { record: 'r1', seq: 1 },
      { record: 'r2', seq: 2 },
      { record: 'r3', seq: 3 },
    ]);
    expect(ssm.commandCalls(GetParameterHistoryCommand).map((c) => c.args[0].input.NextToken)).toEqual([undefined, 't']);
  });

  it('creates a first record with Overwrite: false, as a String parameter', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1, ...meta });
    expect(await store.append('app/db', 'record', 0)).toBe(1);
    expect(ssm.commandCalls(PutParameterCommand)[0]!.args[0].input).toEqual({
      Name: '/dssss/secrets/app/db',
      Value: 'record',
      Type: 'String',
      Overwrite: false,
      Tier: 'Intelligent-Tiering',
    });
  });

  it('reports a lost first create (ParameterAlreadyExists) as not landed', async () => {
    ssm.on(PutParameterCommand).rejects(new ParameterAlreadyExists({ message: 'exists', $metadata: {} }));
    expect(await store.append('app/db', 'record', 0)).toBeUndefined();
  });

  it('counts an overwrite only when Parameter Store gave it the version it expected', async () => {
    ssm.on(PutParameterCommand).resolvesOnce({ Version: 4 }).resolvesOnce({ Version: 6 });
    expect(await store.append('app/db', 'record', 3)).toBe(4);
    expect(ssm.commandCalls(PutParameterCommand)[0]!.args[0].input).toMatchObject({ Overwrite: true });
    // Another write took version 5 first: this one landed at 6, where its record says it must not be.
    expect(await store.append('app/db', 'record', 4)).toBeUndefined();
  });

  it('puts records over 4 KiB in the Advanced tier', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    await store.append('small', 'x'.repeat(STANDARD_TIER_LIMIT), 0);
    await store.append('large', 'x'.repeat(STANDARD_TIER_LIMIT + 1), 0);
    const tiers = ssm.commandCalls(PutParameterCommand).map((c) => c.args[0].input.Tier);
    expect(tiers).toEqual(['Intelligent-Tiering', 'Advanced']);
  });

  it('purges, and reports a missing parameter as nothing purged', async () => {
    ssm.on(DeleteParameterCommand).resolvesOnce({}).rejectsOnce(awsError('ParameterNotFound'));
    expect(await store.purge('app/db')).toBe(true);
    expect(await store.purge('app/db')).toBe(false);
    expect(ssm.commandCalls(DeleteParameterCommand)[0]!.args[0].input).toEqual({ Name: '/dssss/secrets/app/db' });
  });

  it('lists recursively under the prefix\'s path, 10 per call, returning SSM\'s token as the continuation', async () => {
    const page = (names: string[], NextToken?: string) => ({
      Parameters: names.map((n) => ({ Name: `/dssss/secrets/${n}`, Value: `r-${n}`, Version: 1 })),
      NextToken,
    });
    ssm
      .on(GetParametersByPathCommand)
      .resolvesOnce(page(['app/a', 'app/b'], 't1'))
      .resolvesOnce(page(['app/c', 'apple/x'], 't2'));
    const result = await store.list('app/', 15);
    expect(result.entries).toEqual([
      { name: 'app/a', record: 'r-app/a', seq: 1 },
      { name: 'app/b', record: 'r-app/b', seq: 1 },
      { name: 'app/c', record: 'r-app/c', seq: 1 },
    ]);
    expect(result.next).toBe('t2');
    const inputs = ssm.commandCalls(GetParametersByPathCommand).map((c) => c.args[0].input);
    expect(inputs).toEqual([
      { Path: '/dssss/secrets/app', Recursive: true, MaxResults: 10, NextToken: undefined },
      { Path: '/dssss/secrets/app', Recursive: true, MaxResults: 5, NextToken: 't1' },
    ]);
  });

  it('lists the whole tree for an empty prefix, and resumes from a continuation', async () => {
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: '/dssss/secrets/z', Value: 'r', Version: 2 }] });
    expect(await store.list('', 10, 'tok')).toEqual({ entries: [{ name: 'z', record: 'r', seq: 2 }], next: undefined });
    expect(ssm.commandCalls(GetParametersByPathCommand)[0]!.args[0].input).toMatchObject({ Path: '/dssss/secrets', NextToken: 'tok' });
  });

  it('fails the whole list when a page throttles, rather than returning a short list', async () => {
    ssm
      .on(GetParametersByPathCommand)
      .resolvesOnce({ Parameters: [{ Name: '/dssss/secrets/a', Value: 'r' }], NextToken: 't1' })
      .rejectsOnce(awsError('ThrottlingException'));
    await expect(store.list('', 20)).rejects.toMatchObject({ code: 'rate_limited', retryAfter: expect.any(Number) });
  });

  it('refuses a continuation token that Parameter Store rejects with 400', async () => {
    ssm.on(GetParametersByPathCommand).rejects(awsError('InvalidNextToken'));
    await expect(store.list('', 10, 'forged')).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('maps throttling to 429 and other failures to 503, without AWS\'s message', async () => {
    ssm.on(GetParameterCommand).rejects(awsError('ThrottlingException'));
    await expect(store.latest('x')).rejects.toMatchObject({ code: 'rate_limited', detail: { service: 'ssm', awsCode: 'ThrottlingException' } });
    ssm.on(GetParameterCommand).rejects(awsError('InternalServerError'));
    const err = await store.latest('x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', retryAfter: 1 });
    expect((err as Error).message).not.toContain('from AWS');
  });

  it('reports missing credentials and access denied as misconfigured, with the cause kept for the log', async () => {
    for (const name of ['CredentialsProviderError', 'AccessDeniedException']) {
      ssm.on(GetParameterCommand).rejects(awsError(name));
      const err = await store.latest('x').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'misconfigured', status: 503, detail: { service: 'ssm', awsCode: name } });
      expect((err as Error).message).not.toMatch(/retry later/);
    }
  });

  it('keeps bookkeeping under <prefix>meta/ and creates it only once', async () => {
    ssm.on(PutParameterCommand).resolvesOnce({ Version: 1 }).rejectsOnce(awsError('ParameterAlreadyExists'));
    expect(await store.createMeta('seal-key', 'v')).toBe(true);
    expect(await store.createMeta('seal-key', 'w')).toBe(false);
    expect(ssm.commandCalls(PutParameterCommand).map((c) => c.args[0].input)).toMatchObject([
      { Name: '/dssss/meta/seal-key', Overwrite: false },
      { Name: '/dssss/meta/seal-key', Overwrite: false },
    ]);
    ssm.on(GetParametersCommand).resolves({ Parameters: [{ Name: '/dssss/meta/seal-key', Value: 'v', Version: 1 }] });
    expect(await store.readMeta(['seal-key', 'seal-key-2'])).toEqual(new Map([['seal-key', 'v']]));
    expect(ssm.commandCalls(GetParametersCommand)[0]!.args[0].input).toEqual({ Names: ['/dssss/meta/seal-key', '/dssss/meta/seal-key-2'] });
  });
});
