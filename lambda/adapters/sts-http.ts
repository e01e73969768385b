// StsGateway over HTTPS: sends a request that core/iam-login.ts has already checked, and
// reads STS's XML answer. No redirects are followed, and the answer is size-capped. Over
// http-post.ts (node:https, kept alive), not fetch, whose first call would load undici.

import { XMLParser } from 'fast-xml-parser';
import { DssssError, invalidCredentials } from '../core/errors';
import type { CallerIdentity, SignedStsRequest, StsGateway } from '../ports';
import { KeepAliveAgents, post, PostError } from './http-post';

const TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 64 * 1024;

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, processEntities: false });

export class HttpStsGateway implements StsGateway {
  private readonly agents = new KeepAliveAgents();

  constructor(private readonly timeoutMs = TIMEOUT_MS) {}

  async getCallerIdentity(request: SignedStsRequest): Promise<CallerIdentity> {
    let status: number;
    let text: string;
    try {
      // One deadline for the whole call, connection included.
      const deadline = { connectionTimeoutMs: this.timeoutMs, requestTimeoutMs: this.timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES, what: 'STS' };
      ({ status, text } = await post(new URL(request.url), request.headers, request.body, this.agents, deadline));
    } catch (err) {
      if (err instanceof PostError && err.name === 'ResponseTooLarge') throw new DssssError('unavailable', 'STS gave an answer this server cannot read', 1);
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
