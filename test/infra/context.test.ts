// CDK context -> stack props (infra/context.ts), and what `cdk synth` prints when a
// setting is wrong: one line naming the key (infra/app.ts), not a stack trace.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTEXT_KEYS, ContextError, stackFromContext } from '../../infra/context';

const cdkJsonContext = (JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> }).context;

/** As `cdk synth` sees it: cdk.json's feature flags, the CLI's own keys, and the deployer's. */
function fromContext(given: Record<string, unknown>) {
  const all: Record<string, unknown> = { ...cdkJsonContext, 'aws:cdk:enable-path-metadata': true, 'aws:cdk:bundling-stacks': [], ...given };
  return stackFromContext((key) => all[key], Object.keys(all));
}

describe('stack settings from CDK context', () => {
  it('refuses a key it does not know, naming it and the closest known key (finding 8)', () => {
    // One letter short: before, this deployed the default admin role instead of secops.
    const attempt = () => fromContext({ distinguishedRole: 'secops' });
    expect(attempt).toThrow(ContextError);
    expect(attempt).toThrow(/unknown context key "distinguishedRole": did you mean "distinguishedRoles"\?/);
    expect(() => fromContext({ distinguishedRoles: 'secops', nonceMod: 'required' })).toThrow(/"nonceMod": did you mean "nonceMode"/);
    expect(() => fromContext({ distinguishedRoles: 'secops', colour: 'blue' })).toThrow(/^unknown context key "colour" \(known: /);
  });

  it("passes CDK's own namespaced keys and cdk.json's feature flags through", () => {
    expect(fromContext({ distinguishedRoles: 'secops', 'availability-zones:account=1:region=x': ['a'] }).stackName).toBe('Dssss');
  });

  it('requires distinguishedRoles: no admin role exists unless named', () => {
    expect(() => fromContext({})).toThrow(/distinguishedRoles is required/);
    expect(fromContext({ distinguishedRoles: 'none' }).props.distinguishedRoles).toEqual(['none']);
  });

  it('reads lists from "a,b" strings or arrays, numbers and booleans, and refuses what is neither', () => {
    const { stackName, props } = fromContext({
      stackName: 'Team',
      distinguishedRoles: 'secops, breakglass',
      writerRoles: ['ci', ' deployer '],
      tokenTtlSeconds: '300',
      apiGatewayCloudWatchRole: 'false',
    });
    expect(stackName).toBe('Team');
    expect(props).toMatchObject({ distinguishedRoles: ['secops', 'breakglass'], writerRoles: ['ci', 'deployer'], tokenTtlSeconds: 300, apiGatewayCloudWatchRole: false });
    expect(() => fromContext({ distinguishedRoles: 'a', tokenTtlSeconds: 'soon' })).toThrow(/context tokenTtlSeconds: a number/);
    expect(() => fromContext({ distinguishedRoles: 'a', apiGatewayCloudWatchRole: 'yes' })).toThrow(/context apiGatewayCloudWatchRole: true or false/);
  });

  it('reads extra certificates from a file, and says which file it could not read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dssss-ctx-'));
    try {
      writeFileSync(join(dir, 'extra.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      expect(fromContext({ distinguishedRoles: 'a', extraCertsFile: join(dir, 'extra.pem') }).props.extraCertsPem).toContain('MIIB');
      expect(() => fromContext({ distinguishedRoles: 'a', extraCertsFile: join(dir, 'missing.pem') })).toThrow(/extraCertsFile: cannot read .*missing\.pem \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("declares exactly the keys the README's Configure table documents", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('| Context key |'), readme.indexOf('\n\n', readme.indexOf('| Context key |')));
    const documented = [...table.matchAll(/^\| ([^|]+) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([A-Za-z]+)`/g)].map((k) => k[1]!));
    expect(documented.sort()).toEqual(Object.keys(CONTEXT_KEYS).sort());
  });
});

describe('cdk synth with a setting wrong', () => {
  const out = mkdtempSync(join(tmpdir(), 'dssss-synth-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const synth = async (context: Record<string, unknown>) => {
    try {
      await promisify(execFile)(process.execPath, ['--import', 'tsx', 'infra/app.ts'], {
        env: { ...process.env, CDK_OUTDIR: out, CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJsonContext, 'aws:cdk:bundling-stacks': [], ...context }) },
        timeout: 60_000,
      });
      return { code: 0, stderr: '' };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, stderr: e.stderr };
    }
  };

  it('exits 1 with one line naming the key, not a stack trace', async () => {
    const typo = await synth({ distinguishedRole: 'secops' });
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^dssss: unknown context key "distinguishedRole": did you mean "distinguishedRoles"\?.*\n$/);
    expect(typo.stderr.trim().split('\n')).toHaveLength(1);

    const refused = await synth({ distinguishedRoles: 'secops', tokenTtlSeconds: 5 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^dssss: the function would refuse this configuration: DSSSS_TOKEN_TTL_SECONDS.*\n$/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
