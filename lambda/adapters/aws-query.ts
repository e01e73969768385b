// The AWS query protocol (EC2, IAM) in a few lines instead of two SDK clients: a form-encoded
// POST, signed with SigV4 (@smithy/signature-v4) with the SDK's credentials, sent over a
// keep-alive agent (http-post.ts), its XML answer read with fast-xml-parser. The SDK's EC2
// and IAM clients were 556 kB of the artifact and several hundred ms to load, for the three
// calls dssss makes (DescribeInstances, GetInstanceProfile, GetRole). Behaves as the SDK
// clients do with awsClientOptions(): the same endpoints and settings; network errors,
// timeouts and 5xx retried (3 attempts, the SDK's backoff and retry quota), a throttle
// left to the caller at once; a deadline per attempt; errors named by their AWS code, so
// aws-errors.ts maps them as before.

import type { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { XMLParser } from 'fast-xml-parser';
import { memoize } from '../core/memo';
import { CONNECTION_TIMEOUT_MS, MAX_ATTEMPTS, REQUEST_TIMEOUT_MS } from './aws-client';
import { KeepAliveAgents, post } from './http-post';
import { signedPostHeaders, signerFor } from './sigv4';

/** The AWS settings the query clients take from the environment, as the SDK reads them. */
export interface QueryEnvironment {
  readonly AWS_ENDPOINT_URL?: string | undefined;
  readonly AWS_ENDPOINT_URL_EC2?: string | undefined;
  readonly AWS_ENDPOINT_URL_IAM?: string | undefined;
  readonly AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?: string | undefined;
  readonly AWS_USE_FIPS_ENDPOINT?: string | undefined;
  readonly AWS_USE_DUALSTACK_ENDPOINT?: string | undefined;
}

export type QueryService = 'ec2' | 'iam';

export interface QueryEndpoint {
  readonly url: URL;
  /** The Region the request is signed for (IAM is global: us-east-1 in the aws partition). */
  readonly signingRegion: string;
}

const API_VERSION: Record<QueryService, string> = { ec2: '2016-11-15', iam: '2010-05-08' };

/**
 * Where the SDK's client would send a call: AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL
 * (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), else the Region's endpoint in its partition,
 * with AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT as the SDK's rules apply them
 * (test/adapters/aws-query.test.ts compares with the SDK's own endpoint resolvers).
 */
export function queryEndpoint(service: QueryService, region: string, env: QueryEnvironment): QueryEndpoint {
  const configured = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true' ? undefined : (service === 'ec2' ? env.AWS_ENDPOINT_URL_EC2 : env.AWS_ENDPOINT_URL_IAM) || env.AWS_ENDPOINT_URL;
  const partition: Partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  const iamRegion = { aws: 'us-east-1', 'aws-cn': 'cn-north-1', 'aws-us-gov': 'us-gov-west-1' }[partition];
  // A configured endpoint is signed for the client's Region, as the SDK signs it.
  if (configured) return { url: new URL(configured), signingRegion: region };
  const fips = env.AWS_USE_FIPS_ENDPOINT === 'true';
  const dualStack = env.AWS_USE_DUALSTACK_ENDPOINT === 'true';
  const host = service === 'ec2' ? ec2Host(partition, region, fips, dualStack) : iamHost(partition, fips, dualStack);
  return { url: new URL(`https://${host}/`), signingRegion: service === 'iam' ? iamRegion : region };
}

type Partition = 'aws' | 'aws-cn' | 'aws-us-gov';

/** The SDK's endpoint rules for EC2 in the three partitions dssss serves. */
function ec2Host(partition: Partition, region: string, fips: boolean, dualStack: boolean): string {
  // GovCloud's standard endpoints are FIPS ones already; only dual-stack has its own.
  if (partition === 'aws-us-gov') return dualStack ? `ec2${fips ? '-fips' : ''}.${region}.api.aws` : `ec2.${region}.amazonaws.com`;
  const suffix = partition === 'aws-cn' ? (dualStack ? 'api.amazonwebservices.com.cn' : 'amazonaws.com.cn') : dualStack ? 'api.aws' : 'amazonaws.com';
  return `ec2${fips ? '-fips' : ''}.${region}.${suffix}`;
}

/** The SDK's endpoint rules for IAM, a global service: one endpoint per partition. */
function iamHost(partition: Partition, fips: boolean, dualStack: boolean): string {
  if (partition === 'aws-us-gov') return dualStack ? 'iam.us-gov.api.aws' : 'iam.us-gov.amazonaws.com';
  if (partition === 'aws-cn') {
    if (fips) return dualStack ? 'iam-fips.api.amazonwebservices.com.cn' : 'iam-fips.amazonaws.com.cn';
    return dualStack ? 'iam.global.api.amazonwebservices.com.cn' : 'iam.cn-north-1.amazonaws.com.cn';
  }
  return `iam${fips ? '-fips' : ''}.${dualStack ? 'global.api.aws' : 'amazonaws.com'}`;
}

/** An error AWS answered with, named by its code (as the SDK names it), or a transport failure. */
export class AwsQueryError extends Error {
  readonly $metadata: { readonly httpStatusCode?: number };
  readonly $fault: 'client' | 'server';

  constructor(name: string, message: string, status: number | undefined, readonly code?: string) {
    super(message);
    this.name = name;
    this.$metadata = status === undefined ? {} : { httpStatusCode: status };
    this.$fault = status !== undefined && status < 500 ? 'client' : 'server';
  }
}

// The SDK's standard retry strategy (@smithy/core retry, as of the pinned release), less the
// throttles (aws-client.ts says why).
const THROTTLING_CODES = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const TRANSIENT_CODES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_SOCKET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
const DELAY_BASE_MS = 50;
const MAX_DELAY_MS = 20_000;
const RETRY_CAPACITY = 500;
const RETRY_COST = 14;
/** An answer larger than this is not one of these calls' (one instance, one profile, one role). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

function retryKind(err: unknown): 'throttling' | 'transient' | undefined {
  if (!(err instanceof Error)) return undefined;
  const status = (err as AwsQueryError).$metadata?.httpStatusCode;
  if (status === 429 || THROTTLING_CODES.has(err.name)) return 'throttling';
  const socketCode = (err as NodeJS.ErrnoException).code;
  if (TRANSIENT_CODES.has(err.name) || (socketCode !== undefined && TRANSIENT_SOCKET_CODES.has(socketCode)) || (status !== undefined && TRANSIENT_STATUS.has(status))) return 'transient';
  return undefined;
}

export interface QueryClientOptions {
  readonly service: QueryService;
  /** The Region the SDK resolved (the store's client's), for the endpoint and the signature. */
  readonly region: () => Promise<string>;
  readonly credentials: AwsCredentialIdentityProvider;
  /**
   * The SDK's own endpoint settings. Default: the process environment, read here as the SDK
   * clients read it themselves (not through config.ts: they belong to the SDK, and a test's
   * config must not send EC2 elsewhere than its SSM client).
   */
  readonly env?: QueryEnvironment;
  readonly maxAttempts?: number;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Multiplies the backoff between attempts (1: the SDK's); tests of faults shorten it. */
  readonly backoffScale?: number;
}

/** What an answer's XML becomes: elements by name; `item` and `member` lists always arrays. */
export type QueryXml = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  isArray: (name) => name === 'item' || name === 'member',
});

export class AwsQueryClient {
  private readonly service: QueryService;
  private readonly agents = new KeepAliveAgents();
  private readonly resolved = memoize(() => this.resolve());
  private capacity = RETRY_CAPACITY;
  private readonly maxAttempts: number;
  private readonly connectionTimeoutMs: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: QueryClientOptions) {
    this.service = options.service;
    this.maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS;
    this.connectionTimeoutMs = options.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  }

  /** One call, retried as the SDK clients retry (a throttle is not); the answer's XML, or an AwsQueryError. */
  async call(action: string, params: Readonly<Record<string, string>>): Promise<QueryXml> {
    const { endpoint, signer } = await this.resolved();
    const body = new URLSearchParams({ Action: action, Version: API_VERSION[this.service], ...params }).toString();
    let spent: number | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const xml = await this.attempt(endpoint, signer, body);
        // As the SDK's quota: a success gives back what its last retry cost, or 1.
        this.capacity = Math.min(RETRY_CAPACITY, this.capacity + (spent ?? 1));
        return xml;
      } catch (err) {
        if (retryKind(err) !== 'transient' || attempt >= this.maxAttempts || this.capacity < RETRY_COST) throw err;
        this.capacity -= RETRY_COST;
        spent = RETRY_COST;
        const delay = Math.floor(Math.random() * Math.min(DELAY_BASE_MS * 2 ** (attempt - 1), MAX_DELAY_MS) * (this.options.backoffScale ?? 1));
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  destroy(): void {
    this.agents.destroy();
  }

  private async resolve(): Promise<{ endpoint: QueryEndpoint; signer: SignatureV4 }> {
    const endpoint = queryEndpoint(this.service, await this.options.region(), this.options.env ?? process.env);
    const signer = signerFor(this.options.credentials, endpoint.signingRegion, this.service);
    return { endpoint, signer };
  }

  private async attempt(endpoint: QueryEndpoint, signer: SignatureV4, body: string): Promise<QueryXml> {
    const { url } = endpoint;
    // A credentials failure (CredentialsProviderError) propagates as the SDK's would.
    const headers = await signedPostHeaders(signer, url, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) }, body);
    const { status, text } = await post(url, headers, body, this.agents, {
      connectionTimeoutMs: this.connectionTimeoutMs,
      requestTimeoutMs: this.requestTimeoutMs,
      maxResponseBytes: MAX_RESPONSE_BYTES,
      what: this.service.toUpperCase(),
    });
    let xml: QueryXml;
    try {
      xml = parser.parse(text) as QueryXml;
    } catch {
      throw new AwsQueryError(status < 300 ? 'SerializationError' : `Http${status}`, `${this.service.toUpperCase()} answered ${status} with a body that is not XML`, status);
    }
    if (status >= 200 && status < 300) return xml;
    // EC2: <Response><Errors><Error><Code>; IAM: <ErrorResponse><Error><Code>.
    const error = (xml.Response as { Errors?: { Error?: unknown } } | undefined)?.Errors?.Error ?? (xml.ErrorResponse as { Error?: unknown } | undefined)?.Error;
    const first = (Array.isArray(error) ? error[0] : error) as { Code?: unknown; Message?: unknown } | undefined;
    const code = typeof first?.Code === 'string' && /^[A-Za-z0-9._]{1,100}$/.test(first.Code) ? first.Code : `Http${status}`;
    const message = typeof first?.Message === 'string' ? first.Message.slice(0, 500) : `${this.service.toUpperCase()} answered ${status}`;
    throw new AwsQueryError(code, message, status, code);
  }
}

/** The element at `path` under `value`, or undefined. */
export function at(value: unknown, ...path: string[]): unknown {
  let node = value;
  for (const key of path) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/** A list the parser may have left out (empty) or made an array. */
export function items(value: unknown, key: 'item' | 'member'): Record<string, unknown>[] {
  const list = (value as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(list) ? (list as Record<string, unknown>[]) : [];
}

/** A text element's value, or undefined. */
export function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
