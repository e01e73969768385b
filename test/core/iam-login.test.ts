// What IAM login forwards to STS and what it makes of the answer: the refusals here are what
// keeps `POST /v1/auth/iam` from becoming a way to make the server call arbitrary URLs.

import { describe, expect, it } from 'vitest';
import { signGetCallerIdentity, type IamLoginBody } from '../../cli/credentials';
import { DssssError } from '../../lambda/core/errors';
import { parseIamLoginRequest, principalFromArn, type IamLoginConfig } from '../../lambda/core/iam-login';

const credentials = async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session' });
const config: IamLoginConfig = { serverId: 'dssss-prod', partition: 'aws' };

async function signed(env: Record<string, string | undefined> = { AWS_REGION: 'eu-west-1' }, serverId = 'dssss-prod'): Promise<IamLoginBody> {
  return signGetCallerIdentity(serverId, env, credentials);
}

function refusal(input: unknown, with_: IamLoginConfig = config): string {
  try {
    parseIamLoginRequest(input, with_);
  } catch (err) {
    expect(err).toBeInstanceOf(DssssError);
    expect((err as DssssError).status).toBe(400);
    return (err as DssssError).message;
  }
  throw new Error('accepted');
}

describe('parseIamLoginRequest', () => {
  it('accepts what the client signs, for the regional and the global endpoint', async () => {
    for (const env of [{ AWS_REGION: 'eu-west-1' }, {}]) {
      const body = await signed(env);
      const request = parseIamLoginRequest(body, config);
      expect(request.url).toBe(env.AWS_REGION ? 'https://sts.eu-west-1.amazonaws.com/' : 'https://sts.amazonaws.com/');
      expect(request.body).toBe('Action=GetCallerIdentity&Version=2011-06-15');
      expect(request.headers['x-dssss-server-id']).toBe('dssss-prod');
      expect(request.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 .*SignedHeaders=[a-z0-9;-]*x-dssss-server-id/);
      expect(request.headers).not.toHaveProperty('host');
    }
  });

  it.each([
    ['a foreign host', 'https://evil.example.com/'],
    ['a look-alike host', 'https://sts.amazonaws.com.evil.example/'],
    ['an IMDS address', 'https://169.254.169.254/'],
    ['plain http', 'http://sts.amazonaws.com/'],
    ['another port', 'https://sts.amazonaws.com:8443/'],
    ['another path', 'https://sts.amazonaws.com/admin'],
    ['a query', 'https://sts.amazonaws.com/?Action=AssumeRole'],
    ['user info', 'https://user@sts.amazonaws.com/'],
    ['another partition', 'https://sts.cn-north-1.amazonaws.com.cn/'],
    ['not a URL', 'sts.amazonaws.com'],
  ])('refuses %s', async (_, url) => {
    expect(refusal({ ...(await signed()), url })).toMatch(/url/);
  });

  it('accepts the configured endpoint, and only exactly it', async () => {
    const local = { ...config, stsEndpoint: 'http://127.0.0.1:4566' };
    const body = await signed({ AWS_ENDPOINT_URL: 'http://127.0.0.1:4566' });
    expect(parseIamLoginRequest(body, local).url).toBe('http://127.0.0.1:4566/');
    expect(refusal({ ...body, url: 'http://127.0.0.1:4567/' }, local)).toMatch(/https/);
    expect(refusal({ ...body, url: 'http://127.0.0.1:4566/other' }, local)).toMatch(/https/);
  });

  it.each([
    ['another action', 'Action=AssumeRole&Version=2011-06-15'],
    ['an extra parameter', 'Action=GetCallerIdentity&Version=2011-06-15&RoleArn=x'],
    ['a repeated parameter', 'Action=GetCallerIdentity&Version=2011-06-15&Action=GetCallerIdentity'],
    ['another version', 'Action=GetCallerIdentity&Version=2020-01-01'],
    ['an empty body', ''],
    ['reordered parameters', 'Version=2011-06-15&Action=GetCallerIdentity'],
    ['a percent-encoded key', '%41ction=GetCallerIdentity&Version=2011-06-15'],
    ['a trailing separator', 'Action=GetCallerIdentity&Version=2011-06-15&'],
    ['a leading question mark', '?Action=GetCallerIdentity&Version=2011-06-15'],
  ])('refuses %s', async (_, form) => {
    expect(refusal({ ...(await signed()), body: Buffer.from(form).toString('base64') })).toMatch(/GetCallerIdentity/);
  });

  it('refuses a method other than POST', async () => {
    expect(refusal({ ...(await signed()), method: 'GET' })).toMatch(/POST/);
  });

  it('refuses a request signed without the server-id header, or for another server', async () => {
    const unsigned = await signGetCallerIdentity('dssss-prod', { AWS_REGION: 'eu-west-1' }, credentials);
    const authorization = unsigned.headers.authorization!.replace('x-dssss-server-id;', '').replace(';x-dssss-server-id', '');
    expect(refusal({ ...unsigned, headers: { ...unsigned.headers, authorization } })).toMatch(/x-dssss-server-id/);
    const { 'x-dssss-server-id': _, ...without } = unsigned.headers;
    expect(refusal({ ...unsigned, headers: without })).toMatch(/x-dssss-server-id is missing/);
    expect(refusal(await signed({ AWS_REGION: 'eu-west-1' }, 'other-service'))).toMatch(/does not name this server/);
    expect(refusal(await signed({ AWS_REGION: 'eu-west-1' }, 'dssss-pro'))).toMatch(/does not name this server/);
  });

  it('reads the whole Authorization header: a SignedHeaders appended after the signature is refused', async () => {
    // A request signed for another service (no x-dssss-server-id in its signature), dressed up.
    const other = await signGetCallerIdentity('dssss-prod', { AWS_REGION: 'eu-west-1' }, credentials);
    const authorization = `${other.headers.authorization!.replace(';x-dssss-server-id', '')}, SignedHeaders=host;x-dssss-server-id`;
    expect(refusal({ ...other, headers: { ...other.headers, authorization } })).toMatch(/Signature Version 4/);
  });

  it.each(['transfer-encoding', 'expect', 'x-amz-target', 'content-encoding', 'connection', 'x-forwarded-for'])(
    'refuses a %s header rather than forwarding it',
    async (name) => {
      const body = await signed();
      expect(refusal({ ...body, headers: { ...body.headers, [name]: 'x' } })).toMatch(/not accepted/);
    },
  );

  it('forwards only the headers of a signed GetCallerIdentity', async () => {
    const request = parseIamLoginRequest(await signed(), config);
    expect(Object.keys(request.headers).sort()).toEqual(
      ['authorization', 'content-type', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token', 'x-dssss-server-id'],
    );
  });

  it('refuses a host header that differs from the url, and a signature that does not cover the host', async () => {
    const body = await signed();
    expect(refusal({ ...body, headers: { ...body.headers, host: 'evil.example.com' } })).toMatch(/host/);
    const authorization = body.headers.authorization!.replace(';host;', ';');
    expect(authorization).not.toMatch(/host/);
    expect(refusal({ ...body, headers: { ...body.headers, authorization } })).toMatch(/host/);
  });

  it('refuses malformed shapes: not an object, extra fields, non-string headers, bad base64, no SigV4', async () => {
    const body = await signed();
    expect(refusal(null)).toMatch(/not an object/);
    expect(refusal([])).toMatch(/not an object/);
    expect(refusal({ ...body, extra: 1 })).toMatch(/unexpected field/);
    expect(refusal({ ...body, headers: { ...body.headers, 'x-n': 1 } })).toMatch(/strings/);
    expect(refusal({ ...body, headers: { ...body.headers, 'x-n': 'a\r\nb: c' } })).toMatch(/malformed header/);
    expect(refusal({ ...body, body: 'not base64!' })).toMatch(/base64/);
    expect(refusal({ ...body, headers: { ...body.headers, authorization: 'Basic abc' } })).toMatch(/Signature Version 4/);
    expect(refusal({ ...body, headers: { ...body.headers, 'content-type': 'application/json' } })).toMatch(/content-type/);
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x-h${i}`, 'v']));
    expect(refusal({ ...body, headers: { ...body.headers, ...many } })).toMatch(/at most/);
  });
});

describe('principalFromArn', () => {
  const ok = (arn: string, account = '123456789012') => principalFromArn({ arn, account }, 'aws', ['alice']);
  const refused = (arn: string, account = '123456789012', users: string[] = []) => {
    expect(() => principalFromArn({ arn, account }, 'aws', users)).toThrow(expect.objectContaining({ code: 'invalid_credentials' }));
  };

  it('maps an assumed-role session to its role', () => {
    expect(ok('arn:aws:sts::123456789012:assumed-role/worker/ecs-task-1')).toEqual({
      role: 'worker',
      account: '123456789012',
      roleId: undefined,
      principal: 'worker/ecs-task-1',
      session: 'ecs-task-1',
    });
  });

  it("takes the role's unique id from STS's UserId, only when it names the same session", () => {
    const arn = 'arn:aws:sts::123456789012:assumed-role/worker/i-0123456789abcdef0';
    const withId = (userId: string) => principalFromArn({ arn, account: '123456789012', userId }, 'aws', []).roleId;
    expect(withId('AROAEXAMPLEID12345:i-0123456789abcdef0')).toBe('AROAEXAMPLEID12345');
    expect(withId('AROAEXAMPLEID12345:i-0other')).toBeUndefined();
    expect(withId('AIDAEXAMPLEID12345:i-0123456789abcdef0')).toBeUndefined();
    expect(withId('AROAEXAMPLEID12345')).toBeUndefined();
    expect(principalFromArn({ arn, account: '123456789012', userId: 'AROAEXAMPLEID12345:i-0123456789abcdef0' }, 'aws', []).session).toBe('i-0123456789abcdef0');
  });

  it('refuses IAM users unless named, and then maps them to the role of the same name', () => {
    refused('arn:aws:iam::123456789012:user/alice');
    expect(ok('arn:aws:iam::123456789012:user/alice').role).toBe('alice');
    refused('arn:aws:iam::123456789012:user/bob', '123456789012', ['alice']);
  });

  it('refuses the root user, federated users, other partitions and an account that does not match', () => {
    refused('arn:aws:iam::123456789012:root');
    refused('arn:aws:sts::123456789012:federated-user/bob');
    refused('arn:aws-cn:sts::123456789012:assumed-role/worker/s');
    refused('arn:aws:sts::123456789012:assumed-role/worker/s', '999999999999');
    refused('arn:aws:sts::123456789012:assumed-role/wo rker/s');
  });
});
