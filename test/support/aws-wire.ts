// The stand-in on the wire: one HTTP server on 127.0.0.1 that answers as AWS does, so
// AWS_ENDPOINT_URL=http://127.0.0.1:PORT sends every SDK client (and hand-signed requests)
// to it. It routes by protocol:
// - JSON (X-Amz-Target): AmazonSSM.*, TrentService.* (KMS), DynamoDB_20120810.*, AWSEvents.*;
// - query (form body with Action=), the service named by the SigV4 credential scope:
//   ec2 (EC2's XML), iam and sts (awsQuery XML). STS checks the signature against the
//   credentials registered with the stand-in, as STS does.
// - /<instance-id>/latest/...: that instance's IMDS (imds.ts).
// Errors go out in each protocol's format and status, so the SDK's own parsing and retry
// classification run. What a call does is the backend's (fake-aws.ts, over aws-world.ts).

import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { AwsError, type CallContext, type Service, type StandInCredentials } from './aws-world';
import type { Imds } from './imds';

/** The failure the transport acts out: a reset, or an answer that never comes (after acting, for hang). */
export class TransportFault extends Error {
  constructor(readonly kind: 'network' | 'timeout' | 'hang') {
    super(`injected ${kind}`);
  }
}

export interface WireBackend {
  invoke(op: string, input: Record<string, unknown>, context?: CallContext): Promise<Record<string, unknown>>;
  credentials(accessKeyId: string): StandInCredentials | undefined;
  readonly imds: Imds;
}

export interface AwsServer {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL. */
  readonly url: string;
  /** An instance's IMDS base URL, `${url}/<instance-id>`: what AWS_EC2_METADATA_SERVICE_ENDPOINT takes for the dssss client. */
  imdsUrl(instanceId: string): string;
  /**
   * The instance's IMDS on a port of its own, for the SDK's credential provider, which keeps
   * only the host and port of AWS_EC2_METADATA_SERVICE_ENDPOINT.
   */
  listenImds(instanceId: string): Promise<string>;
  close(): Promise<void>;
}

const JSON_TARGETS: Record<string, { service: Service; contentType: string; typePrefix: string }> = {
  AmazonSSM: { service: 'SSM', contentType: 'application/x-amz-json-1.1', typePrefix: '' },
  TrentService: { service: 'KMS', contentType: 'application/x-amz-json-1.1', typePrefix: '' },
  DynamoDB_20120810: { service: 'DynamoDB', contentType: 'application/x-amz-json-1.0', typePrefix: 'com.amazonaws.dynamodb.v20120810#' },
  AWSEvents: { service: 'EventBridge', contentType: 'application/x-amz-json-1.1', typePrefix: '' },
};
const QUERY_SERVICES: Record<string, Service> = { ec2: 'EC2', iam: 'IAM', sts: 'STS' };
const XML_NAMESPACES: Record<string, string> = {
  EC2: 'http://ec2.amazonaws.com/doc/2016-11-15/',
  IAM: 'https://iam.amazonaws.com/doc/2010-05-08/',
  STS: 'https://sts.amazonaws.com/doc/2011-06-15/',
};
const MAX_BODY_BYTES = 1024 * 1024;
/** A held answer (timeout, hang) is dropped after this, so nothing waits forever. */
const MAX_HOLD_MS = 30_000;
const INSTANCE_PATH = /^\/(i-[0-9a-f]{8,17})(\/.*)$/;

export async function serveAws(backend: WireBackend): Promise<AwsServer> {
  const servers: Server[] = [];
  const listen = async (handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>) => {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => {
        if (size > MAX_BODY_BYTES) return void res.writeHead(413).end();
        handler(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`stand-in failure: ${(err as Error).message}`);
        });
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  const url = await listen(async (req, res, body) => {
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
    const instance = INSTANCE_PATH.exec(path);
    if (instance) return backend.imds.serve(instance[1]!, instance[2]!, req, res);
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string') return answerJson(backend, target, req, res, body);
    if (req.method === 'POST' && /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '')) {
      return answerQuery(backend, req, res, body);
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('the stand-in serves AWS JSON and query protocols, and /<instance-id>/latest/... (IMDS)');
  });

  return {
    url,
    imdsUrl: (instanceId) => `${url}/${instanceId}`,
    listenImds: (instanceId) => listen((req, res) => backend.imds.serve(instanceId, new URL(req.url ?? '/', 'http://stand-in').pathname, req, res)),
    close: async () => {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      );
    },
  };
}

// ---- JSON protocols ----

async function answerJson(backend: WireBackend, target: string, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const [prefix = '', action = ''] = target.split('.');
  const protocol = JSON_TARGETS[prefix];
  const send = (status: number, payload: unknown) => {
    res.writeHead(status, { 'Content-Type': protocol?.contentType ?? 'application/x-amz-json-1.1', 'x-amzn-RequestId': randomUUID() });
    res.end(JSON.stringify(payload));
  };
  if (!protocol) return send(400, { __type: 'UnknownOperationException', message: `the stand-in does not serve ${target}` });
  let input: Record<string, unknown>;
  try {
    input = decodeJsonInput(protocol.service, action, JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>);
  } catch {
    return send(400, { __type: `${protocol.typePrefix}SerializationException`, message: 'the body is not JSON' });
  }
  await respond(backend, `${protocol.service}.${action}`, input, {}, req, res, {
    ok: (output) => send(200, toJson(output)),
    error: (err) => send(err.status, { __type: `${protocol.typePrefix}${err.code}`, message: err.message, ...(toJson(err.extra) as object) }),
  });
}

/** Blobs travel as base64: KMS's ciphertext, DynamoDB's B and BS values. */
function decodeJsonInput(service: Service, action: string, input: Record<string, unknown>): Record<string, unknown> {
  const bytes = (value: unknown) => new Uint8Array(Buffer.from(String(value), 'base64'));
  if (service === 'KMS' && action === 'Decrypt' && input.CiphertextBlob !== undefined) return { ...input, CiphertextBlob: bytes(input.CiphertextBlob) };
  if (service !== 'DynamoDB') return input;
  const value = (av: Record<string, unknown>): Record<string, unknown> => {
    if (av.B !== undefined) return { B: bytes(av.B) };
    if (Array.isArray(av.BS)) return { BS: av.BS.map(bytes) };
    if (av.M && typeof av.M === 'object') return { M: map(av.M as Record<string, Record<string, unknown>>) };
    if (Array.isArray(av.L)) return { L: (av.L as Record<string, unknown>[]).map(value) };
    return av;
  };
  const map = (m: Record<string, Record<string, unknown>>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, value(v)]));
  const out = { ...input };
  for (const field of ['Key', 'Item', 'ExpressionAttributeValues']) {
    if (out[field] && typeof out[field] === 'object') out[field] = map(out[field] as Record<string, Record<string, unknown>>);
  }
  return out;
}

/** The SDK's shapes as AWS's JSON: bytes as base64, times as epoch seconds. */
function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(toJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

// ---- query protocols ----

async function answerQuery(backend: WireBackend, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const form = new URLSearchParams(body.toString('utf8'));
  const action = form.get('Action') ?? '';
  const scope = /Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(String(req.headers.authorization ?? ''));
  const service = scope ? QUERY_SERVICES[scope[4]!] : undefined;
  const requestId = randomUUID();
  const sendXml = (status: number, xml: string) => {
    res.writeHead(status, { 'Content-Type': 'text/xml', 'x-amzn-RequestId': requestId });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
  };
  const sendError = (err: AwsError, as: Service | undefined) => {
    if (as === 'EC2') {
      return sendXml(err.status, `<Response><Errors><Error><Code>${escape(err.code)}</Code><Message>${escape(err.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`);
    }
    const type = err.status >= 500 ? 'Receiver' : 'Sender';
    const ns = as ? ` xmlns="${XML_NAMESPACES[as]}"` : '';
    sendXml(err.status, `<ErrorResponse${ns}><Error><Type>${type}</Type><Code>${escape(err.code)}</Code><Message>${escape(err.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`);
  };
  if (!service) {
    const why = scope ? `the stand-in does not serve ${scope[4]} over the query protocol` : 'Request is missing Authentication Token';
    return sendError(new AwsError(scope ? 'InvalidAction' : 'MissingAuthenticationToken', why, scope ? 400 : 403), undefined);
  }
  const input = queryInput(service, action, form);
  if (!input) return sendError(new AwsError('InvalidAction', `The action ${action} is not valid for this web service (the stand-in's ${service})`), service);
  const context = service === 'STS' ? { ...(await verifySignature(req, body, backend)), accessKeyId: scope![1] } : {};
  await respond(backend, `${service}.${action}`, input, context, req, res, {
    ok: (output) => sendXml(200, service === 'EC2' ? describeInstancesXml(output, requestId) : awsQueryXml(service, action, output, requestId)),
    error: (err) => sendError(err, service),
  });
}

/** The query parameters of the actions served, as the SDK's input shape. */
function queryInput(service: Service, action: string, form: URLSearchParams): Record<string, unknown> | undefined {
  const numbered = (prefix: string) =>
    [...form.keys()]
      .map((k) => new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)$`).exec(k))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map((m) => form.get(m[0])!);
  switch (`${service}.${action}`) {
    case 'EC2.DescribeInstances': {
      const filters = [...form.keys()]
        .map((k) => /^Filter\.(\d+)\.Name$/.exec(k)?.[1])
        .filter((n): n is string => n !== undefined)
        .sort((a, b) => Number(a) - Number(b))
        .map((n) => ({ Name: form.get(`Filter.${n}.Name`)!, Values: numbered(`Filter.${n}.Value`) }));
      const ids = numbered('InstanceId');
      return { ...(ids.length > 0 ? { InstanceIds: ids } : {}), ...(filters.length > 0 ? { Filters: filters } : {}) };
    }
    case 'IAM.GetInstanceProfile':
      return { InstanceProfileName: form.get('InstanceProfileName') ?? undefined };
    case 'IAM.GetRole':
      return { RoleName: form.get('RoleName') ?? undefined };
    case 'STS.GetCallerIdentity':
      return {};
    default:
      return undefined;
  }
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** awsQuery's XML (IAM, STS): members by name, lists as <member>, times in ISO 8601. */
function awsQueryXml(service: Service, action: string, output: Record<string, unknown>, requestId: string): string {
  const element = (name: string, value: unknown): string => {
    if (value === undefined || value === null) return '';
    if (Array.isArray(value)) return `<${name}>${value.map((v) => element('member', v)).join('')}</${name}>`;
    if (value instanceof Date) return `<${name}>${value.toISOString()}</${name}>`;
    if (typeof value === 'object') return `<${name}>${Object.entries(value).map(([k, v]) => element(k, v)).join('')}</${name}>`;
    return `<${name}>${escape(String(value))}</${name}>`;
  };
  const result = Object.entries(output).map(([k, v]) => element(k, v)).join('');
  return `<${action}Response xmlns="${XML_NAMESPACES[service]}"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
}

interface Ec2Reservation {
  ReservationId: string;
  OwnerId: string;
  Instances: { InstanceId: string; State: { Code: number; Name: string }; IamInstanceProfile?: { Arn: string; Id?: string }; LaunchTime?: Date; Placement?: { AvailabilityZone: string } }[];
}

/** EC2's own XML for DescribeInstances: lower-camel names, lists as <xSet><item>. */
function describeInstancesXml(output: Record<string, unknown>, requestId: string): string {
  const tag = (name: string, value: string | number | undefined) => (value === undefined ? '' : `<${name}>${escape(String(value))}</${name}>`);
  const reservations = (output.Reservations as Ec2Reservation[]).map(
    (r) =>
      `<item>${tag('reservationId', r.ReservationId)}${tag('ownerId', r.OwnerId)}<groupSet/><instancesSet>${r.Instances.map(
        (i) =>
          `<item>${tag('instanceId', i.InstanceId)}<instanceState>${tag('code', i.State.Code)}${tag('name', i.State.Name)}</instanceState>` +
          (i.IamInstanceProfile ? `<iamInstanceProfile>${tag('arn', i.IamInstanceProfile.Arn)}${tag('id', i.IamInstanceProfile.Id)}</iamInstanceProfile>` : '') +
          tag('launchTime', i.LaunchTime?.toISOString()) +
          (i.Placement ? `<placement>${tag('availabilityZone', i.Placement.AvailabilityZone)}</placement>` : '') +
          `</item>`,
      ).join('')}</instancesSet></item>`,
  );
  return `<DescribeInstancesResponse xmlns="${XML_NAMESPACES.EC2}"><requestId>${requestId}</requestId><reservationSet>${reservations.join('')}</reservationSet></DescribeInstancesResponse>`;
}

// ---- one call, whatever the protocol ----

async function respond(
  backend: WireBackend,
  op: string,
  input: Record<string, unknown>,
  context: CallContext,
  req: IncomingMessage,
  res: ServerResponse,
  send: { ok(output: Record<string, unknown>): void; error(err: AwsError): void },
): Promise<void> {
  let output: Record<string, unknown>;
  try {
    output = await backend.invoke(op, input, context);
  } catch (err) {
    if (err instanceof AwsError) return send.error(err);
    if (err instanceof TransportFault) {
      if (err.kind === 'network') {
        req.socket.destroy();
      } else {
        // The answer never comes; the client's deadline ends the wait (or, at the latest, this).
        setTimeout(() => req.socket.destroy(), MAX_HOLD_MS).unref();
      }
      return;
    }
    throw err;
  }
  send.ok(output);
}

// ---- SigV4, as STS checks it ----

const INVALID_TOKEN = () => new AwsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
const MISMATCH = () =>
  new AwsError(
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    403,
  );
const SKEW_MS = 15 * 60_000;

/**
 * Who signed the request, found by its access key id among the registered credentials and
 * proven by signing it again with that secret key: the caller, or why STS refuses it.
 */
export async function verifySignature(
  req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>,
  body: Buffer,
  source: Pick<WireBackend, 'credentials'>,
  now = Date.now(),
): Promise<CallContext> {
  const header = String(req.headers.authorization ?? '');
  const parsed = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(header);
  if (!parsed) {
    const authError = header === '' ? new AwsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403) : new AwsError('IncompleteSignature', 'The request signature is malformed.', 403);
    return { authError };
  }
  const [, accessKeyId, day, region, service, signedList, signature] = parsed as unknown as string[];
  const credentials = source.credentials(accessKeyId!);
  if (!credentials || (req.headers['x-amz-security-token'] ?? undefined) !== credentials.sessionToken) return { authError: INVALID_TOKEN() };
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(req.headers['x-amz-date'] ?? ''));
  if (!stamp || `${stamp[1]}${stamp[2]}${stamp[3]}` !== day) return { authError: MISMATCH() };
  const signingDate = new Date(Date.UTC(+stamp[1]!, +stamp[2]! - 1, +stamp[3]!, +stamp[4]!, +stamp[5]!, +stamp[6]!));
  if (Math.abs(now - signingDate.getTime()) > SKEW_MS) {
    return { authError: new AwsError('SignatureDoesNotMatch', `Signature expired: ${req.headers['x-amz-date']} is now earlier or later than the allowed 15 minutes.`, 403) };
  }
  // The signer takes a signed x-amz-content-sha256 as the body's hash: it must be the body's.
  const declared = req.headers['x-amz-content-sha256'];
  if (declared !== undefined && declared !== createHash('sha256').update(body).digest('hex')) return { authError: MISMATCH() };
  const names = signedList!.split(';');
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    if (value === undefined) return { authError: MISMATCH() };
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const url = new URL(req.url ?? '/', 'http://stand-in');
  const signer = new SignatureV4({
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
    region: region!,
    service: service!,
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: false,
  });
  const again = await signer.sign(
    {
      method: req.method ?? 'POST',
      protocol: 'http:',
      hostname: 'stand-in',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: body.toString('utf8'),
    },
    { signingDate, signableHeaders: new Set(names) },
  );
  const ours = /SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(String(again.headers.authorization ?? ''));
  const same = ours !== null && ours[1] === signedList && timingSafeEqual(Buffer.from(ours[2]!), Buffer.from(signature!));
  return same ? { caller: credentials } : { authError: MISMATCH() };
}
