// A POST signed with SigV4 by the SDK's own signer: what the client's IAM login sends to the
// server, and what the server's query-protocol calls (EC2, IAM) send to AWS.

import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

export function signerFor(credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider, region: string, service: string): SignatureV4 {
  return new SignatureV4({ credentials, region, service, sha256: Hash.bind(null, 'sha256') });
}

/** The headers to send with `body` to `url`: `headers`, `host`, and the signature's. */
export async function signedPostHeaders(signer: SignatureV4, url: URL, headers: Record<string, string>, body: string): Promise<Record<string, string>> {
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: {},
    headers: { host: url.host, ...headers },
    body,
  });
  return signed.headers;
}
