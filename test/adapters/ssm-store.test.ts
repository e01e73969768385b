import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
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
  it('reads the latest version by path and an older one with the :version selector', async () => {
    ssm.on(GetParameterCommand, { Name: '/dssss/secrets/app/db' }).resolves({ Parameter: { Value: 'r3', Version: 3 } });
    ssm.on(GetParameterCommand, { Name: '/dssss/secrets/app/db:1' }).resolves({ Parameter: { Value: 'r1', Version: 1 } });
    expect(await store.read('app/db')).toEqual({ record: 'r3', version: 3 });
    expect(await store.read('app/db', 1)).toEqual({ record: 'r1', version: 1 });
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(2);
  });

  it('reads a missing parameter or version as absent', async () => {
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'nope', $metadata: {} }));
    expect(await store.read('x')).toBeUndefined();
    ssm.on(GetParameterCommand).rejects(awsError('ParameterVersionNotFound'));
    expect(await store.read('x', 9)).toBeUndefined();
  });

  it('creates with Overwrite: false, as a String parameter', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1, ...meta });
    expect(await store.create('app/db', 'record')).toBe(1);
    expect(ssm.commandCalls(PutParameterCommand)[0]!.args[0].input).toEqual({
      Name: '/dssss/secrets/app/db',
      Value: 'record',
      Type: 'String',
      Overwrite: false,
      Tier: 'Intelligent-Tiering',
    });
  });

  it('turns a concurrent create (ParameterAlreadyExists) into a conflict', async () => {
    ssm.on(PutParameterCommand).rejects(new ParameterAlreadyExists({ message: 'exists', $metadata: {} }));
    await expect(store.create('app/db', 'record')).rejects.toMatchObject({ code: 'conflict' });
  });

  it('overwrites with Overwrite: true', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 4 });
    expect(await store.update('app/db', 'record')).toBe(4);
    expect(ssm.commandCalls(PutParameterCommand)[0]!.args[0].input).toMatchObject({ Overwrite: true });
  });

  it('puts records over 4 KiB in the Advanced tier', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    await store.create('small', 'x'.repeat(STANDARD_TIER_LIMIT));
    await store.create('large', 'x'.repeat(STANDARD_TIER_LIMIT + 1));
    const tiers = ssm.commandCalls(PutParameterCommand).map((c) => c.args[0].input.Tier);
    expect(tiers).toEqual(['Intelligent-Tiering', 'Advanced']);
  });

  it('deletes, and reports a missing parameter as nothing deleted', async () => {
    ssm.on(DeleteParameterCommand).resolvesOnce({}).rejectsOnce(awsError('ParameterNotFound'));
    expect(await store.delete('app/db')).toBe(true);
    expect(await store.delete('app/db')).toBe(false);
    expect(ssm.commandCalls(DeleteParameterCommand)[0]!.args[0].input).toEqual({ Name: '/dssss/secrets/app/db' });
  });

  it('lists recursively under the prefix\'s path, 10 per call, returning SSM\'s token as the continuation', async () => {
    const page = (names: string[], NextToken?: string) => ({
      Parameters: names.map((n) => ({ Name: `/dssss/secrets/${n}`, Value: `r-${n}` })),
      NextToken,
    });
    ssm
      .on(GetParametersByPathCommand)
      .resolvesOnce(page(['app/a', 'app/b'], 't1'))
      .resolvesOnce(page(['app/c', 'apple/x'], 't2'));
    const result = await store.list('app/', 15);
    expect(result.entries).toEqual([
      { name: 'app/a', record: 'r-app/a' },
      { name: 'app/b', record: 'r-app/b' },
      { name: 'app/c', record: 'r-app/c' },
    ]);
    expect(result.next).toBe('t2');
    const inputs = ssm.commandCalls(GetParametersByPathCommand).map((c) => c.args[0].input);
    expect(inputs).toEqual([
      { Path: '/dssss/secrets/app', Recursive: true, MaxResults: 10, NextToken: undefined },
      { Path: '/dssss/secrets/app', Recursive: true, MaxResults: 5, NextToken: 't1' },
    ]);
  });

  it('lists the whole tree for an empty prefix, and resumes from a continuation', async () => {
    ssm.on(GetParametersByPathCommand).resolves({ Parameters: [{ Name: '/dssss/secrets/z', Value: 'r' }] });
    expect(await store.list('', 10, 'tok')).toEqual({ entries: [{ name: 'z', record: 'r' }], next: undefined });
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
    await expect(store.read('x')).rejects.toMatchObject({ code: 'rate_limited' });
    ssm.on(GetParameterCommand).rejects(awsError('InternalServerError'));
    const err = await store.read('x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', retryAfter: 1 });
    expect((err as Error).message).not.toContain('from AWS');
  });

  it('keeps bookkeeping under <prefix>meta/ and creates it only once', async () => {
    ssm.on(PutParameterCommand).resolvesOnce({ Version: 1 }).rejectsOnce(awsError('ParameterAlreadyExists'));
    expect(await store.createMeta('seal-key', 'v')).toBe(true);
    expect(await store.createMeta('seal-key', 'w')).toBe(false);
    expect(ssm.commandCalls(PutParameterCommand).map((c) => c.args[0].input)).toMatchObject([
      { Name: '/dssss/meta/seal-key', Overwrite: false },
      { Name: '/dssss/meta/seal-key', Overwrite: false },
    ]);
    ssm.on(GetParameterCommand, { Name: '/dssss/meta/seal-key' }).resolves({ Parameter: { Value: 'v', Version: 1 } });
    expect(await store.readMeta('seal-key')).toBe('v');
  });
});
