// StsGateway over HTTPS: sends a request that core/iam-login.ts has already checked, and
// reads STS's XML answer. No redirects are followed, and the answer is size-capped.

import { XMLParser } from 'fast-xml-parser';
import { DssssError, invalidCredentials } from '../core/errors';
import type { CallerIdentity, SignedStsRequest, StsGateway } from '../ports';

const TIMEOUT_MS = 5000;
const MAX_RESPONSE_CHARS = 64 * 1024;

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, processEntities: false });

export class HttpStsGateway implements StsGateway {
  constructor(private readonly timeoutMs = TIMEOUT_MS) {}

  async getCallerIdentity(request: SignedStsRequest): Promise<CallerIdentity> {
    let status: number;
    let text: string;
    try {
      const response = await fetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.status;
      text = (await response.text()).slice(0, MAX_RESPONSE_CHARS);
    } catch {
      throw new DssssError('unavailable', 'STS did not answer; try again', 1);
    }

    const xml = parseXml(text);
    if (status === 200) {
      const result = xml?.GetCallerIdentityResponse?.GetCallerIdentityResult;
      if (typeof result?.Arn !== 'string' || typeof result.Account !== 'string') {
        throw new DssssError('unavailable', 'STS gave an answer this server cannot read', 1);
      }
      // UserId of an assumed role is "<role id>:<session>": the id tells a recreated role from the old one.
      return { arn: result.Arn, account: result.Account, userId: typeof result.UserId === 'string' ? result.UserId : undefined };
    }
    const code = xml?.ErrorResponse?.Error?.Code;
    const named = typeof code === 'string' && /^[A-Za-z.]{1,64}$/.test(code) ? ` (${code})` : '';
    if (status === 429 || code === 'Throttling') throw new DssssError('rate_limited', 'STS throttled the login; try again', 1);
    if (status >= 400 && status < 500) throw invalidCredentials(`STS refused the signed request${named}`, 'sts_refused');
    throw new DssssError('unavailable', `STS failed with status ${status}; try again`, 1);
  }
}

interface StsXml {
  GetCallerIdentityResponse?: { GetCallerIdentityResult?: { Arn?: unknown; Account?: unknown; UserId?: unknown } };
  ErrorResponse?: { Error?: { Code?: unknown } };
}

function parseXml(text: string): StsXml | undefined {
  try {
    return parser.parse(text) as StsXml;
  } catch {
    return undefined;
  }
}
