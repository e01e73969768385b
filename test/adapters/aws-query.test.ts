// The EC2 and IAM query-protocol client: the SDK's endpoints, a signature over exactly what
// is sent, AWS's errors by their codes, and the SDK clients' retries (a throttle left to the
// caller) and deadlines. Against small
// loopback servers here; against the shared stand-in in ec2-roles.test.ts, moto_server in
// `npm run test:aws`.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientOptions, CONNECTION_TIMEOUT_MS, MAX_ATTEMPTS, REQUEST_TIMEOUT_MS } from '../../lambda/adapters/aws-client';
import { dependencyError } from '../../lambda/adapters/aws-errors';
import { AwsQueryClient, queryEndpoint, type QueryService } from '../../lambda/adapters/aws-query';

const credentials = { accessKeyId: 'AKIDQUERYTEST', secretAccessKey: 'query-test-secret' };

describe('endpoints', () => {
  const regions = ['us-east-1', 'eu-west-1', 'ap-southeast-2', 'cn-north-1', 'cn-northwest-1', 'us-gov-west-1', 'us-gov-east-1'];
  const sdk = (service: QueryService, region: string, fips: boolean, dualStack: boolean) => {
    const client = service === 'ec2' ? new EC2Client({ region }) : new IAMClient({ region });
    const endpoint = (client.config as unknown as { endpointProvider: (p: object) => { url: URL; properties?: { authSchemes?: { signingRegion?: string }[] } } }).endpointProvider({
      Region: region,
      UseFIPS: fips,
      UseDualStack: dualStack,
    });
    return { url: endpoint.url.href, signingRegion: endpoint.properties?.authSchemes?.[0]?.signingRegion ?? region };
  };

  for (const service of ['ec2', 'iam'] as const) {
    it(`${service}: the SDK's own endpoint and signing Region, with and without FIPS and dual-stack, in every partition`, () => {
      for (const region of regions) {
        for (const fips of [false, true]) {
          for (const dualStack of [false, true]) {
            const env = { AWS_USE_FIPS_ENDPOINT: String(fips), AWS_USE_DUALSTACK_ENDPOINT: String(dualStack) };
            const ours = queryEndpoint(service, region, env);
            expect({ url: ours.url.href, signingRegion: ours.signingRegion }, `${service} ${region} fips=${fips} dualstack=${dualStack}`).toEqual(sdk(service, region, fips, dualStack));
          }
        }
      }
    });
  }

  it('takes AWS_ENDPOINT_URL_<SERVICE> over AWS_ENDPOINT_URL, neither with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, and signs for the Region', () => {
    const env = { AWS_ENDPOINT_URL: 'http://127.0.0.1:1000', AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:2000' };
    expect(queryEndpoint('ec2', 'eu-west-1', env)).toEqual({ url: new URL('http://127.0.0.1:2000'), signingRegion: 'eu-west-1' });
    expect(queryEndpoint('iam', 'eu-west-1', env)).toEqual({ url: new URL('http://127.0.0.1:1000'), signingRegion: 'eu-west-1' });
    expect(queryEndpoint('iam', 'eu-west-1', { ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }).url.href).toBe('https://iam.amazonaws.com/');
  });
});

describe('calls', () => {
  let server: Server;
  let url: string;
  let answers: ((req: IncomingMessage, body: string, res: ServerResponse) => void)[];
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        const answer = answers.shift();
        if (answer) answer(req, body, res);
        else xml(res, 200, '<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  beforeEach(() => {
    answers = [];
    received.length = 0;
  });

  const xml = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { 'Content-Type': 'text/xml' });
    res.end(text);
  };
  const ec2Error = (code: string) => `<Response><Errors><Error><Code>${code}</Code><Message>${code} happened</Message></Error></Errors><RequestID>r</RequestID></Response>`;
  const client = (service: QueryService = 'ec2', deadlines: { connectionTimeoutMs?: number; requestTimeoutMs?: number } = {}) =>
    new AwsQueryClient({ service, region: async () => 'eu-west-1', credentials: async () => credentials, env: { AWS_ENDPOINT_URL: url }, ...deadlines });

  it("takes the SDK clients' settings: 3 attempts, 1 s to connect, 2 s an attempt", () => {
    expect([MAX_ATTEMPTS, CONNECTION_TIMEOUT_MS, REQUEST_TIMEOUT_MS]).toEqual([3, 1000, 2000]);
    expect(awsClientOptions()).toMatchObject({ maxAttempts: MAX_ATTEMPTS, requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS } });
  });

  it('posts the form of Action, Version and the parameters, signed (SigV4) over exactly what it sends', async () => {
    const out = await client().call('DescribeInstances', { 'InstanceId.1': 'i-0123456789abcdef0' });
    expect(out).toEqual({ DescribeInstancesResponse: { reservationSet: '' } });
    const [{ headers, body }] = received as [{ headers: IncomingMessage['headers']; body: string }];
    expect(body).toBe('Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0');
    expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDQUERYTEST\/\d{8}\/eu-west-1\/ec2\/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
    // The signature a verifier computes from the request as received.
    const signer = new SignatureV4({ credentials, region: 'eu-west-1', service: 'ec2', sha256: Hash.bind(null, 'sha256') });
    const date = headers['x-amz-date'] as string;
    const again = await signer.sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: Number(new URL(url).port),
        path: '/',
        query: {},
        headers: { host: headers.host!, 'content-type': headers['content-type']!, 'content-length': headers['content-length']!, 'x-amz-content-sha256': headers['x-amz-content-sha256'] as string },
        body,
      },
      { signingDate: new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`) },
    );
    expect(again.headers.authorization).toBe(headers.authorization);
  });

  it("names an error by AWS's code, EC2's and IAM's shapes alike, so aws-errors maps it as the SDK's", async () => {
    answers.push((_req, _body, res) => xml(res, 400, ec2Error('InvalidInstanceID.NotFound')));
    await expect(client().call('DescribeInstances', {})).rejects.toMatchObject({ name: 'InvalidInstanceID.NotFound', $metadata: { httpStatusCode: 400 } });
    answers.push((_req, _body, res) => xml(res, 404, '<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>no</Message></Error></ErrorResponse>'));
    await expect(client('iam').call('GetRole', { RoleName: 'x' })).rejects.toMatchObject({ name: 'NoSuchEntity', $metadata: { httpStatusCode: 404 } });
    answers.push((_req, _body, res) => xml(res, 403, ec2Error('UnauthorizedOperation')));
    const denied = await client().call('DescribeInstances', {}).catch((err: unknown) => err);
    expect(dependencyError(denied, 'EC2', 'ec2')).toMatchObject({ code: 'misconfigured', status: 503 });
    expect(received).toHaveLength(3); // none of these is retried
  });

  it('leaves a throttle to the caller at once, as the SDK clients do: one request, a 429 for the caller', async () => {
    answers.push((_req, _body, res) => xml(res, 503, ec2Error('RequestLimitExceeded')));
    const ec2 = await client().call('DescribeInstances', {}).catch((e: unknown) => e);
    answers.push((_req, _body, res) => xml(res, 400, '<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>'));
    const iam = await client('iam').call('GetRole', {}).catch((e: unknown) => e);
    expect(received).toHaveLength(2);
    expect(dependencyError(ec2, 'EC2', 'ec2')).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(dependencyError(iam, 'IAM', 'iam')).toMatchObject({ code: 'rate_limited', status: 429 });
  });

  it('retries a 500, and a body that is not XML is an error, not a crash', async () => {
    answers.push((_req, _body, res) => xml(res, 500, 'oops'));
    expect(await client().call('DescribeInstances', {})).toEqual({ DescribeInstancesResponse: { reservationSet: '' } });
    answers.push((_req, _body, res) => xml(res, 400, 'not <xml'));
    await expect(client().call('DescribeInstances', {})).rejects.toMatchObject({ $metadata: { httpStatusCode: 400 } });
  });

  it('gives an attempt that never answers its deadline, three times, then a TimeoutError (503 for the caller)', async () => {
    for (let i = 0; i < 3; i++) answers.push(() => undefined); // read, never answered
    const started = Date.now();
    const err = await client('ec2', { requestTimeoutMs: 150 }).call('DescribeInstances', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError' });
    expect(received).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(dependencyError(err, 'EC2', 'ec2')).toMatchObject({ code: 'unavailable', status: 503 });
  });

  it('refuses an answer over 1 MiB', async () => {
    answers.push((_req, _body, res) => xml(res, 200, `<R>${'x'.repeat(1024 * 1024 + 1)}</R>`));
    await expect(client().call('DescribeInstances', {})).rejects.toMatchObject({ name: 'ResponseTooLarge' });
  });

  it('puts no credential or signature in its errors', async () => {
    answers.push((_req, _body, res) => xml(res, 400, ec2Error('InvalidParameterValue')));
    const err = (await client().call('DescribeInstances', {}).catch((e: unknown) => e)) as Error;
    expect(`${err.name} ${err.message} ${JSON.stringify(err)}`).not.toMatch(/AKIDQUERYTEST|query-test-secret|Signature=/);
  });
});
