// Stand-ins for Parameter Store and KMS with real state (versions, conditional create,
// paging, wrapped keys), answering in the SDK's shapes. The call-count suite plugs them into
// aws-sdk-client-mock; the cold-start suite serves them over HTTP on 127.0.0.1 to the
// bundled artifact, which reaches them through AWS_ENDPOINT_URL.

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function awsError(name: string, message = name): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

interface ParameterVersion {
  readonly value: string;
  readonly version: number;
}

export interface ParameterOut {
  Name: string;
  Type: 'String';
  Value: string;
  Version: number;
}

/** One Region's Parameter Store, as much of it as dssss uses. */
export class FakeParameterStore {
  private readonly parameters = new Map<string, ParameterVersion[]>();

  getParameter(input: { Name?: string | undefined }): { Parameter: ParameterOut } {
    const [name = '', selector] = (input.Name ?? '').split(':');
    const versions = this.parameters.get(name);
    if (!versions) throw awsError('ParameterNotFound');
    const entry = selector === undefined ? versions.at(-1) : versions.find((v) => v.version === Number(selector));
    if (!entry) throw awsError('ParameterVersionNotFound');
    return { Parameter: { Name: name, Type: 'String', Value: entry.value, Version: entry.version } };
  }

  putParameter(input: { Name?: string | undefined; Value?: string | undefined; Overwrite?: boolean | undefined }): { Version: number; Tier: string } {
    const name = input.Name ?? '';
    const versions = this.parameters.get(name);
    if (versions && !input.Overwrite) throw awsError('ParameterAlreadyExists');
    const version = (versions?.at(-1)?.version ?? 0) + 1;
    this.parameters.set(name, [...(versions ?? []), { value: input.Value ?? '', version }].slice(-100));
    return { Version: version, Tier: 'Standard' };
  }

  deleteParameter(input: { Name?: string | undefined }): Record<string, never> {
    if (!this.parameters.delete(input.Name ?? '')) throw awsError('ParameterNotFound');
    return {};
  }

  getParametersByPath(input: { Path?: string | undefined; MaxResults?: number | undefined; NextToken?: string | undefined }): {
    Parameters: ParameterOut[];
    NextToken?: string;
  } {
    const path = (input.Path ?? '/').replace(/\/?$/, '/');
    const names = [...this.parameters.keys()].filter((name) => name.startsWith(path)).sort();
    const start = input.NextToken === undefined ? 0 : Number(input.NextToken);
    if (!Number.isInteger(start) || start < 0 || start > names.length) throw awsError('InvalidNextToken');
    const end = start + Math.min(10, input.MaxResults ?? 10);
    const Parameters = names.slice(start, end).map((name) => this.getParameter({ Name: name }).Parameter);
    return end < names.length ? { Parameters, NextToken: String(end) } : { Parameters };
  }
}

/** KMS data keys under one customer key: the blob means nothing without this object. */
export class FakeKms {
  private readonly keys = new Map<string, { plaintext: Uint8Array; context: string }>();

  constructor(readonly keyId: string) {}

  generateDataKey(input: { EncryptionContext?: Record<string, string> | undefined }): { Plaintext: Uint8Array; CiphertextBlob: Uint8Array; KeyId: string } {
    const plaintext = new Uint8Array(randomBytes(32));
    const blob = new Uint8Array(randomBytes(64));
    this.keys.set(Buffer.from(blob).toString('base64'), { plaintext, context: JSON.stringify(input.EncryptionContext ?? {}) });
    return { Plaintext: plaintext.slice(), CiphertextBlob: blob, KeyId: this.keyId };
  }

  decrypt(input: { CiphertextBlob?: Uint8Array | undefined; EncryptionContext?: Record<string, string> | undefined }): { Plaintext: Uint8Array; KeyId: string } {
    const entry = this.keys.get(Buffer.from(input.CiphertextBlob ?? []).toString('base64'));
    if (!entry || entry.context !== JSON.stringify(input.EncryptionContext ?? {})) throw awsError('InvalidCiphertextException');
    return { Plaintext: entry.plaintext.slice(), KeyId: this.keyId };
  }
}

export interface LoopbackAws {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL. */
  readonly url: string;
  /** Requests served, by X-Amz-Target (e.g. "AmazonSSM.GetParameter"). */
  readonly calls: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Parameter Store and KMS over the AWS JSON protocol on 127.0.0.1: one server for both,
 * told apart by X-Amz-Target. Anything it does not know is a 400, so an unexpected call
 * fails the request instead of passing unnoticed.
 */
export async function serveLoopbackAws(ssm: FakeParameterStore, kms: FakeKms): Promise<LoopbackAws> {
  const calls = new Map<string, number>();
  const handlers: Record<string, (input: Record<string, unknown>) => unknown> = {
    'AmazonSSM.GetParameter': (input) => ssm.getParameter(input as { Name?: string }),
    'TrentService.Decrypt': (input) => {
      const out = kms.decrypt({
        CiphertextBlob: new Uint8Array(Buffer.from(String(input.CiphertextBlob), 'base64')),
        EncryptionContext: input.EncryptionContext as Record<string, string> | undefined,
      });
      return { KeyId: out.KeyId, Plaintext: Buffer.from(out.Plaintext).toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? `${req.method} ${req.url}`);
      calls.set(target, (calls.get(target) ?? 0) + 1);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      const handler = handlers[target];
      if (!handler) return send(400, { __type: 'UnknownOperationException', message: `the bench stub does not serve ${target}` });
      try {
        send(200, handler(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>));
      } catch (err) {
        send(400, { __type: (err as Error).name, message: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
