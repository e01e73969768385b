// The original Go dssss's records, read with the operator's AWS credentials and opened, for
// `dssss admin import-dssss`. Its layout, in one account and Region: `.dssss.config.json`
// (SecureString) holds the master key wrapped by KMS (no encryption context), and each secret
// is `.dssss.secret.<name>` (SecureString), `{"Bytes", "KeyCiphertext"}`: the secret's own key
// sealed by the master key, and `{"RoleList", "SecretCiphertext"}` sealed by that key, the
// value inside sealed by it again. Every seal is nonce (24 bytes) followed by a NaCl secretbox:
// the framing of lambda/core/sealed-box.ts.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { openBytes } from '../lambda/core/sealed-box';
import { credentialsFromEnv, noCredentials, profileCredentials, serviceEndpoint, signPost } from './credentials';
import { CliError, EXIT } from './errors';
import { Backoff } from './retry';

export const GO_CONFIG = '.dssss.config.json';
export const GO_SECRET_PREFIX = '.dssss.secret.';

export interface GoSecret {
  readonly name: string;
  readonly value: string;
  /** null: stored without roles. */
  readonly roles: readonly string[] | null;
}

export interface GoRead {
  readonly secrets: GoSecret[];
  /** Records that did not open, by name, and why (never a value). */
  readonly failed: { name: string; why: string }[];
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Every secret of the original deployment in this account and Region, read with the default
 * AWS credential chain. Four Parameter Store and KMS calls over their JSON protocol, signed
 * like the IAM login (cli/credentials.ts), rather than the SDK's clients: those would add
 * 315 kB and 10 ms to every command for one that runs once, at a migration. Throttling, 5xx
 * and connection failures are retried within `retryForMs`.
 */
export async function readGoDssss(env: Env, retryForMs: number): Promise<GoRead> {
  const call = (service: 'ssm' | 'kms', step: string, target: string, input: object) => awsJson(env, service, step, target, input, retryForMs);
  const config = (await call('ssm', 'reading .dssss.config.json', 'AmazonSSM.GetParameter', { Name: GO_CONFIG, WithDecryption: true }).catch((err: unknown) => {
    if (err instanceof AwsCallError && err.type === 'ParameterNotFound') throw new CliError(EXIT.notFound, 'no original dssss in this account and Region: .dssss.config.json is missing');
    throw err;
  })) as { Parameter?: { Value?: string } };
  let parsed: { MasterKeyCiphertext?: unknown; KMSArn?: unknown };
  try {
    parsed = JSON.parse(config.Parameter?.Value ?? '') as typeof parsed;
  } catch {
    throw new CliError(EXIT.error, '.dssss.config.json is not the original\'s JSON');
  }
  if (typeof parsed.MasterKeyCiphertext !== 'string') throw new CliError(EXIT.error, '.dssss.config.json holds no MasterKeyCiphertext');
  const decrypted = (await call('kms', 'unwrapping the master key with KMS', 'TrentService.Decrypt', {
    CiphertextBlob: parsed.MasterKeyCiphertext,
    ...(typeof parsed.KMSArn === 'string' ? { KeyId: parsed.KMSArn } : {}),
  })) as { Plaintext?: string };
  const master = Buffer.from(decrypted.Plaintext ?? '', 'base64');
  if (master.length !== 32) throw new CliError(EXIT.error, 'the master key from KMS is not 32 bytes');

  try {
    const names: string[] = [];
    let next: string | undefined;
    do {
      const page = (await call('ssm', 'listing the secrets', 'AmazonSSM.DescribeParameters', {
        ParameterFilters: [{ Key: 'Name', Option: 'BeginsWith', Values: [GO_SECRET_PREFIX] }],
        MaxResults: 50,
        ...(next === undefined ? {} : { NextToken: next }),
      })) as { Parameters?: { Name?: string }[]; NextToken?: string };
      for (const p of page.Parameters ?? []) if (p.Name?.startsWith(GO_SECRET_PREFIX)) names.push(p.Name);
      next = page.NextToken || undefined;
    } while (next !== undefined);
    names.sort();

    const read: GoRead = { secrets: [], failed: [] };
    for (let i = 0; i < names.length; i += 10) {
      const out = (await call('ssm', 'reading the secrets', 'AmazonSSM.GetParameters', { Names: names.slice(i, i + 10), WithDecryption: true })) as {
        Parameters?: { Name: string; Value?: string }[];
        InvalidParameters?: string[];
      };
      for (const p of out.Parameters ?? []) {
        const name = p.Name.slice(GO_SECRET_PREFIX.length);
        try {
          read.secrets.push({ name, ...openGoRecord(p.Value ?? '', master) });
        } catch (err) {
          read.failed.push({ name, why: (err as Error).message });
        }
      }
      for (const missing of out.InvalidParameters ?? []) read.failed.push({ name: missing.slice(GO_SECRET_PREFIX.length), why: 'deleted while being read' });
    }
    return read;
  } finally {
    master.fill(0);
  }
}

/** Opens one `.dssss.secret.<name>` value with the master key; throws with a reason (never a value). */
export function openGoRecord(text: string, master: Uint8Array): { value: string; roles: string[] | null } {
  let record: { Bytes?: unknown; KeyCiphertext?: unknown };
  try {
    record = JSON.parse(text) as typeof record;
  } catch {
    throw new Error('not the original\'s JSON record');
  }
  if (typeof record.Bytes !== 'string' || typeof record.KeyCiphertext !== 'string') throw new Error('not the original\'s JSON record');
  const key = openBytes(Buffer.from(record.KeyCiphertext, 'base64'), master);
  if (key?.length !== 32) throw new Error('its key does not open with the master key');
  try {
    const content = openBytes(Buffer.from(record.Bytes, 'base64'), key);
    if (!content) throw new Error('its content does not open with its key');
    let inner: { RoleList?: unknown; SecretCiphertext?: unknown };
    try {
      inner = JSON.parse(Buffer.from(content).toString('utf8')) as typeof inner;
    } catch {
      throw new Error('its content is not the original\'s JSON');
    }
    const roles = inner.RoleList;
    if (roles !== null && roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) throw new Error('its RoleList is not a list of names');
    if (typeof inner.SecretCiphertext !== 'string') throw new Error('it holds no SecretCiphertext');
    const value = openBytes(Buffer.from(inner.SecretCiphertext, 'base64'), key);
    if (!value) throw new Error('its value does not open with its key');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(value);
    } catch {
      throw new Error('its value is not UTF-8 text, which dssss values are');
    }
    return { value: text, roles: (roles as string[] | null | undefined) ?? null };
  } finally {
    key.fill(0);
  }
}

class AwsCallError extends CliError {
  constructor(
    exitCode: number,
    message: string,
    readonly type: string,
  ) {
    super(exitCode, message);
  }
}

/** One call over AWS's JSON protocol; a refusal as one line naming the step and AWS's error type (never a value). */
async function awsJson(env: Env, service: 'ssm' | 'kms', step: string, target: string, input: object, retryForMs: number): Promise<unknown> {
  const { url, region } = serviceEndpoint(env, service);
  const body = JSON.stringify(input);
  const backoff = new Backoff({ forMs: retryForMs });
  const credentials = credentialsFromEnv(env) ?? profileCredentials(env) ?? noCredentials();
  for (;;) {
    const headers = await signPost(url, region, service, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target }, body, credentials);
    let answer: { status: number; text: string };
    try {
      answer = await post(url, headers, body);
    } catch (err) {
      if (await backoff.next()) continue;
      throw new CliError(EXIT.unavailable, `${step} failed (${(err as NodeJS.ErrnoException).code ?? 'connection failed'})`);
    }
    if (answer.status >= 200 && answer.status < 300) return JSON.parse(answer.text || '{}');
    let type = `HTTP ${answer.status}`;
    try {
      // "com.amazonaws.kms#AccessDeniedException" or "AccessDeniedException"
      type = String((JSON.parse(answer.text) as { __type?: string }).__type ?? type).split('#').pop()!;
    } catch {
      // not JSON: keep the status
    }
    if ((answer.status >= 500 || /Throttl|TooManyRequests|RequestLimitExceeded/.test(type)) && (await backoff.next())) continue;
    const auth = answer.status === 403 || /AccessDenied|UnrecognizedClient|InvalidClientTokenId|ExpiredToken|InvalidSignature|SignatureDoesNotMatch/.test(type);
    throw new AwsCallError(auth ? EXIT.auth : answer.status >= 500 || answer.status === 429 ? EXIT.unavailable : EXIT.error, `${step} failed (${type})`, type);
  }
}

function post(url: URL, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'POST', headers, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end(body);
  });
}
