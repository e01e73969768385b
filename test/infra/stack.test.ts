// The deployed stack, read back from its synthesized CloudFormation: the function's
// configuration, least-privilege IAM, the key, the API's throttling and logs, the endpoint
// types, and cdk-nag's AwsSolutions pack with every acknowledgment explained.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { DssssStack, KEY_ADMIN_ACTIONS, type DssssStackProps } from '../../infra/stack';
import { REQUIRE_BANNER } from '../../infra/bundle';

/** The feature flags `cdk synth` uses, so the tests see the template a deploy would. */
const cdkJsonContext = (JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: object }).context;

interface Synthesized {
  app: App;
  stack: DssssStack;
  template: Template;
  json: Record<string, any>;
}

/**
 * Synthesizes with cdk-nag registered as `infra/app.ts` does (a finding that is not
 * acknowledged makes synth throw). Bundling is skipped unless asked for: esbuild output is
 * checked once, in its own test.
 */
type Settings = Partial<DssssStackProps>;

/** The props a deployer must give, and these tests' choice for them. */
const REQUIRED = { distinguishedRoles: ['dssssadmin'] } satisfies Settings;

function synth(props: Settings = {}, { bundle = false, id = 'Dssss' } = {}): Synthesized {
  const app = new App({ context: { ...cdkJsonContext, ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) } });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
  const stack = new DssssStack(app, id, { ...REQUIRED, ...props });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() };
}

type Resource = { Type: string; Properties: Record<string, any>; Metadata?: Record<string, any>; DeletionPolicy?: string };

function resourcesOf(s: Synthesized, type: string): [string, Resource][] {
  return Object.entries(s.json.Resources as Record<string, Resource>).filter(([, r]) => r.Type === type);
}

function only(s: Synthesized, type: string): Resource {
  const found = resourcesOf(s, type);
  expect(found, type).toHaveLength(1);
  return found[0]![1];
}

/** The API's function (the instance-events function is the other one). */
function apiFunction(s: Synthesized): Resource {
  const found = resourcesOf(s, 'AWS::Lambda::Function').filter(([, r]) => r.Properties.Handler === 'index.handler');
  expect(found).toHaveLength(1);
  return found[0]![1];
}

function functionRoleId(s: Synthesized): string {
  const fn = apiFunction(s);
  return (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

function functionRole(s: Synthesized): Resource {
  return (s.json.Resources as Record<string, Resource>)[functionRoleId(s)]!;
}

function statements(s: Synthesized): any[] {
  const policies = functionRole(s).Properties.Policies as { PolicyName: string; PolicyDocument: { Statement: any[] } }[];
  expect(policies).toHaveLength(1);
  return policies[0]!.PolicyDocument.Statement;
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

describe('DssssStack with its defaults', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth();
  });

  it('runs the function on Node.js 22 or newer, on arm64, with 512 MB and 29 s (the API Gateway limit)', () => {
    const fn = apiFunction(s);
    const runtime = /^nodejs(\d+)\.x$/.exec(fn.Properties.Runtime as string);
    expect(runtime, fn.Properties.Runtime).not.toBeNull();
    expect(Number(runtime![1])).toBeGreaterThanOrEqual(22);
    expect(fn.Properties.Architectures).toEqual(['arm64']);
    expect(fn.Properties.MemorySize).toBe(512);
    expect(fn.Properties.Timeout).toBe(29);
    expect(fn.Properties.Handler).toBe('index.handler');
  });

  it('configures the function with exactly the variables lambda/config.ts reads', () => {
    const fn = apiFunction(s);
    expect(fn.Properties.Environment.Variables).toEqual({
      DSSSS_BACKEND: 'aws',
      DSSSS_KMS_KEY_ID: s.stack.resolve(s.stack.key.keyArn),
      DSSSS_PARAMETER_PREFIX: '/dssss/',
      DSSSS_ALLOWED_ACCOUNTS: { Ref: 'AWS::AccountId' },
      DSSSS_ACCOUNT_ID: { Ref: 'AWS::AccountId' },
      DSSSS_DISTINGUISHED_ROLES: 'dssssadmin',
      DSSSS_TOKEN_TTL_SECONDS: '900',
      DSSSS_SERVER_ID: { 'Fn::Join': ['', ['Dssss-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]] },
      DSSSS_DEPLOYMENT: 'Dssss',
      DSSSS_BOOKKEEPING_TABLE: s.stack.resolve(s.stack.bookkeeping.tableName),
    });
  });

  it('logs the function to its own log group, kept for a year', () => {
    const fn = apiFunction(s);
    const logGroupId = (fn.Properties.LoggingConfig.LogGroup as { Ref: string }).Ref;
    const logGroup = (s.json.Resources as Record<string, Resource>)[logGroupId]!;
    expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup.Properties.RetentionInDays).toBe(365);
  });

  it('keeps the seal key in a customer-managed KMS key with rotation, which outlives the stack', () => {
    const key = only(s, 'AWS::KMS::Key');
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    s.template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/dssss-Dssss' });
  });

  it('gives the function exactly these permissions: its log group, the two trees under the prefix, instance lookups', () => {
    const partition = { Ref: 'AWS::Partition' };
    const account = { Ref: 'AWS::AccountId' };
    const parameter = (name: string) => ({
      'Fn::Join': ['', ['arn:', partition, ':ssm:', { Ref: 'AWS::Region' }, ':', account, `:parameter${name}`]],
    });
    const table = s.stack.resolve(s.stack.bookkeeping.tableArn);
    expect(statements(s)).toEqual([
      {
        Sid: 'OwnLogGroup',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: s.stack.resolve(s.stack.function.logGroup.logGroupArn),
      },
      {
        Sid: 'SecretsUnderPrefix',
        Effect: 'Allow',
        Action: [
          'ssm:DeleteParameter',
          'ssm:GetParameter',
          'ssm:GetParameterHistory',
          'ssm:GetParameters',
          'ssm:GetParametersByPath',
          'ssm:PutParameter',
        ],
        Resource: [parameter('/dssss/meta/*'), parameter('/dssss/secrets/*')],
      },
      { Sid: 'ListAllSecrets', Effect: 'Allow', Action: 'ssm:GetParametersByPath', Resource: [parameter('/dssss/meta'), parameter('/dssss/secrets')] },
      { Sid: 'ReadBookkeeping', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: table },
      {
        Sid: 'BindNonces',
        Effect: 'Allow',
        Action: 'dynamodb:PutItem',
        Resource: table,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['nonce-*'] } },
      },
      { Sid: 'InstanceLookup', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' },
      {
        Sid: 'InstanceProfileLookup',
        Effect: 'Allow',
        Action: 'iam:GetInstanceProfile',
        Resource: { 'Fn::Join': ['', ['arn:', partition, ':iam::', account, ':instance-profile/*']] },
      },
      {
        Sid: 'RoleIdLookup',
        Effect: 'Allow',
        Action: 'iam:GetRole',
        Resource: { 'Fn::Join': ['', ['arn:', partition, ':iam::', account, ':role/*']] },
      },
    ]);
    expect(functionRole(s).Properties.ManagedPolicyArns).toBeUndefined();
    s.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }] },
      Policies: Match.anyValue(),
    });
  });

  it('lets no identity policy use the key: the key policy alone decides who may', () => {
    const identityActions = [
      ...resourcesOf(s, 'AWS::IAM::Role').flatMap(([, r]) => (r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement)),
      ...resourcesOf(s, 'AWS::IAM::Policy').flatMap(([, r]) => r.Properties.PolicyDocument.Statement),
    ].flatMap((st) => asList(st.Action));
    expect(identityActions.filter((a) => String(a).startsWith('kms:'))).toEqual([]);
  });

  it('gives the key an explicit policy: the account administers it, only the function unwraps, with its encryption context', () => {
    const key = only(s, 'AWS::KMS::Key');
    const roleArn = { 'Fn::GetAtt': [functionRoleId(s), 'Arn'] };
    expect(key.Properties.KeyPolicy.Statement).toEqual([
      {
        Sid: 'AccountAdministersTheKey',
        Effect: 'Allow',
        Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'AWS::AccountId' }, ':root']] } },
        Action: [...KEY_ADMIN_ACTIONS].sort(),
        Resource: '*',
      },
      {
        Sid: 'FunctionUnwrapsTheSealKey',
        Effect: 'Allow',
        Principal: { AWS: roleArn },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:EncryptionContext:dssss:prefix': '/dssss/' } },
      },
    ]);
  });

  it('lets no principal but the function open data with the key, nor hand that right on (finding 8)', () => {
    // CDK's default key policy, `kms:*` for the account root, lets any principal of the
    // account whose IAM policy allows kms:Decrypt unwrap the seal key. Whatever the
    // statements become, none but the function's may carry a data or grant action.
    const opensData = (action: string) =>
      action.includes('*') || /^kms:(Decrypt|Encrypt|ReEncrypt|GenerateDataKey|CreateGrant|GenerateMac|Sign|DeriveSharedSecret)/.test(action);
    const roleArn = JSON.stringify({ 'Fn::GetAtt': [functionRoleId(s), 'Arn'] });
    for (const st of only(s, 'AWS::KMS::Key').Properties.KeyPolicy.Statement) {
      expect(st.Effect, st.Sid).toBe('Allow');
      expect(st.NotAction ?? st.NotPrincipal ?? st.NotResource, st.Sid).toBeUndefined();
      const dataActions = asList(st.Action).map(String).filter(opensData);
      if (dataActions.length === 0) continue;
      expect(JSON.stringify(st.Principal), st.Sid).toBe(JSON.stringify({ AWS: JSON.parse(roleArn) }));
      expect(dataActions.sort(), st.Sid).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
      expect(st.Condition, st.Sid).toEqual({ StringEquals: { 'kms:EncryptionContext:dssss:prefix': '/dssss/' } });
    }
  });

  it('lets only ec2:DescribeInstances use Resource "*" in any identity policy of the stack', () => {
    const identityStatements = [
      ...resourcesOf(s, 'AWS::IAM::Role').flatMap(([, r]) => (r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement)),
      ...resourcesOf(s, 'AWS::IAM::Policy').flatMap(([, r]) => r.Properties.PolicyDocument.Statement),
    ];
    const star = identityStatements.filter((st) => asList(st.Resource).includes('*'));
    expect(star.map((st) => st.Action)).toEqual(['ec2:DescribeInstances']);
    expect(identityStatements.flatMap((st) => asList(st.Action)).filter((a) => String(a).includes('*'))).toEqual([]);
  });

  it('serves the function through a regional REST API with proxy integration on / and /{proxy+}', () => {
    const api = only(s, 'AWS::ApiGateway::RestApi');
    expect(api.Properties.EndpointConfiguration).toEqual({ Types: ['REGIONAL'] });
    expect(api.Properties.Policy).toBeUndefined();
    s.template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' });
    const methods = resourcesOf(s, 'AWS::ApiGateway::Method').map(([, m]) => m.Properties);
    expect(methods).toHaveLength(2);
    for (const method of methods) {
      expect(method.HttpMethod).toBe('ANY');
      expect(method.Integration.Type).toBe('AWS_PROXY');
    }
  });

  it('throttles the stage and keeps execution logs to errors, without request data', () => {
    const stage = only(s, 'AWS::ApiGateway::Stage');
    expect(stage.Properties.MethodSettings).toEqual([
      {
        HttpMethod: '*',
        ResourcePath: '/*',
        ThrottlingRateLimit: 100,
        ThrottlingBurstLimit: 200,
        LoggingLevel: 'ERROR',
        DataTraceEnabled: false,
        MetricsEnabled: true,
      },
    ]);
  });

  it('writes access logs of $context fields only: no header, no credential, no body', () => {
    const stage = only(s, 'AWS::ApiGateway::Stage');
    const format = stage.Properties.AccessLogSetting.Format as string;
    for (const forbidden of ['authentication', 'reauthentication', 'authorization', '$input', 'header']) {
      expect(format.toLowerCase()).not.toContain(forbidden);
    }
    const fields = JSON.parse(format) as Record<string, string>;
    for (const value of Object.values(fields)) expect(value).toMatch(/^\$context\.[A-Za-z.]+$/);
    expect(Object.keys(fields)).toEqual(
      expect.arrayContaining(['requestId', 'ip', 'requestTime', 'httpMethod', 'status', 'responseLength', 'integrationLatency']),
    );
    const destination = JSON.stringify(stage.Properties.AccessLogSetting.DestinationArn);
    const accessLogGroups = resourcesOf(s, 'AWS::Logs::LogGroup').filter(([id]) => destination.includes(id));
    expect(accessLogGroups).toHaveLength(1);
    expect(accessLogGroups[0]![1].Properties.RetentionInDays).toBe(365);
  });

  it('outputs the API URL, the key ARN, the parameter prefix, the server id and the dashboard, and nothing else', () => {
    expect(Object.keys(s.json.Outputs as object).sort()).toEqual(['ApiUrl', 'DashboardName', 'KmsKeyArn', 'ParameterPrefix', 'ServerId']);
    s.template.hasOutput('ApiUrl', { Value: s.stack.resolve(s.stack.api.url) });
    s.template.hasOutput('KmsKeyArn', { Value: s.stack.resolve(s.stack.key.keyArn) });
    s.template.hasOutput('ParameterPrefix', { Value: '/dssss/' });
  });

  it('passes cdk-nag AwsSolutions with no finding left unacknowledged', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('leaves no construct errors or warnings, cdk-nag or otherwise', () => {
    expect(Annotations.fromStack(s.stack).findError('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(s.stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  it('acknowledges only these cdk-nag findings, each with a reason', () => {
    const acknowledged = Object.entries(s.json.Resources as Record<string, Resource>).flatMap(([id, r]) =>
      ((r.Metadata?.cdk_nag?.rules_to_suppress ?? []) as { id: string; reason: string }[]).map((rule) => ({ resource: id, ...rule })),
    );
    for (const { id, reason } of acknowledged) {
      expect(reason.trim().length, id).toBeGreaterThanOrEqual(20);
    }
    const type = (resource: string) => (s.json.Resources as Record<string, Resource>)[resource]!.Type;
    expect([...new Set(acknowledged.map(({ resource, id }) => `${type(resource)} ${id}`))].sort()).toEqual([
      'AWS::ApiGateway::Method AwsSolutions-APIG4',
      'AWS::ApiGateway::Method AwsSolutions-COG4',
      'AWS::ApiGateway::RestApi AwsSolutions-APIG2',
      'AWS::ApiGateway::Stage AwsSolutions-APIG3',
      'AWS::IAM::Role AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'AWS::IAM::Role AwsSolutions-IAM5[Resource::*]',
      'AWS::IAM::Role AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:instance-profile/*]',
      'AWS::IAM::Role AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]',
      'AWS::IAM::Role AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/dssss/meta/*]',
      'AWS::IAM::Role AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/dssss/secrets/*]',
      'AWS::SQS::Queue AwsSolutions-SQS3',
    ]);
  });
});

describe('DssssStack with every setting given', () => {
  const pem = ['-----BEGIN CERTIFICATE-----', 'MIIBfake', '-----END CERTIFICATE-----'].join('\n');
  let s: Synthesized;
  beforeAll(() => {
    s = synth({
      distinguishedRoles: ['admin', 'breakglass'],
      writerRoles: ['ci', 'deployer'],
      prefixWriters: 'app/=web,deploy;billing/=billing',
      iamUsers: ['alice'],
      nonceMode: 'required',
      maxDocumentAgeSeconds: 86400,
      allowedAccounts: ['111111111111', '222222222222'],
      tokenTtlSeconds: 300,
      parameterPrefix: '/team/dssss/',
      extraCertsPem: pem,
      serverId: 'prod-eu',
      throttlingRateLimit: 10,
      throttlingBurstLimit: 20,
      apiGatewayCloudWatchRole: false,
      legacyNonceBindings: true,
    });
  });

  it('passes each setting to the function, and the optional variables only when set', () => {
    expect(apiFunction(s).Properties.Environment.Variables).toEqual({
      DSSSS_BACKEND: 'aws',
      DSSSS_KMS_KEY_ID: s.stack.resolve(s.stack.key.keyArn),
      DSSSS_PARAMETER_PREFIX: '/team/dssss/',
      DSSSS_ALLOWED_ACCOUNTS: '111111111111,222222222222',
      DSSSS_ACCOUNT_ID: { Ref: 'AWS::AccountId' },
      DSSSS_DISTINGUISHED_ROLES: 'admin,breakglass',
      DSSSS_WRITER_ROLES: 'ci,deployer',
      DSSSS_PREFIX_WRITERS: 'app/=web,deploy;billing/=billing',
      DSSSS_IAM_USERS: 'alice',
      DSSSS_NONCE_MODE: 'required',
      DSSSS_MAX_DOCUMENT_AGE_SECONDS: '86400',
      DSSSS_TOKEN_TTL_SECONDS: '300',
      DSSSS_EXTRA_CERTS: pem,
      DSSSS_SERVER_ID: 'prod-eu',
      DSSSS_DEPLOYMENT: 'Dssss',
      DSSSS_BOOKKEEPING_TABLE: s.stack.resolve(s.stack.bookkeeping.tableName),
      DSSSS_LEGACY_NONCE_BINDINGS: 'true',
    });
  });

  it('scopes Parameter Store and the key condition to the given prefix', () => {
    const [, ssm, list] = statements(s);
    expect(JSON.stringify(ssm.Resource)).toContain(':parameter/team/dssss/secrets/*');
    expect(JSON.stringify(ssm.Resource)).toContain(':parameter/team/dssss/meta/*');
    expect(JSON.stringify(list.Resource)).toContain(':parameter/team/dssss/secrets"');
    const [, unwrap] = only(s, 'AWS::KMS::Key').Properties.KeyPolicy.Statement;
    expect(unwrap.Condition).toEqual({ StringEquals: { 'kms:EncryptionContext:dssss:prefix': '/team/dssss/' } });
  });

  it('throttles at the given rates', () => {
    const [settings] = only(s, 'AWS::ApiGateway::Stage').Properties.MethodSettings;
    expect(settings).toMatchObject({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 });
  });

  it('leaves the account-level API Gateway logging role alone when told to', () => {
    expect(resourcesOf(s, 'AWS::ApiGateway::Account')).toEqual([]);
    const services = resourcesOf(s, 'AWS::IAM::Role').map(([, r]) => r.Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service);
    expect(services).toEqual(['lambda.amazonaws.com', 'lambda.amazonaws.com']);
  });
});

describe('DssssStack bookkeeping and instance states', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth();
  });
  const fn = () => {
    const found = resourcesOf(s, 'AWS::Lambda::Function').filter(([, r]) => r.Properties.Handler === 'instance-events.handler');
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it('keeps per-instance bookkeeping in an on-demand table, with expiry and point-in-time recovery', () => {
    const table = only(s, 'AWS::DynamoDB::Table');
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'x', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('sends EC2 instance state changes to the instance-events function, retried for a day', () => {
    const [id] = fn();
    const rule = only(s, 'AWS::Events::Rule');
    expect(rule.Properties.EventPattern).toEqual({ source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'] });
    expect(rule.Properties.Targets).toHaveLength(1);
    expect(rule.Properties.Targets[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [id, 'Arn'] },
      RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
      DeadLetterConfig: { Arn: s.stack.resolve(s.stack.instanceEventsFailed.queueArn) },
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', FunctionName: { 'Fn::GetAtt': [id, 'Arn'] } });
  });

  it('lets the instance-events function write instance states and nothing else (and its failures to its queue); the API function only binds nonces', () => {
    const [, events] = fn();
    expect(events.Properties.Environment.Variables).toEqual({ DSSSS_BOOKKEEPING_TABLE: s.stack.resolve(s.stack.bookkeeping.tableName), DSSSS_ACCOUNT_ID: { Ref: 'AWS::AccountId' } });
    const roleId = (events.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const role = (s.json.Resources as Record<string, Resource>)[roleId]!;
    const [logsStatement, record] = role.Properties.Policies[0].PolicyDocument.Statement;
    expect(logsStatement.Action).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(record).toEqual({
      Sid: 'RecordInstanceStates',
      Effect: 'Allow',
      Action: 'dynamodb:PutItem',
      Resource: s.stack.resolve(s.stack.bookkeeping.tableArn),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['instance-*'] } },
    });
    expect(role.Properties.Policies[0].PolicyDocument.Statement).toHaveLength(2);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    // The only other grant: sending what it could not record to its dead-letter queue.
    const queue = s.stack.resolve(s.stack.instanceEventsFailed.queueArn);
    const attached = resourcesOf(s, 'AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(roleId));
    expect(attached.flatMap(([, p]) => p.Properties.PolicyDocument.Statement)).toEqual([{ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queue }]);
    expect(events.Properties.DeadLetterConfig).toEqual({ TargetArn: queue });
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 2 });
  });
});

describe('DssssStack with change events', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ changeEvents: true }, { id: 'Prod' });
  });

  it('creates one bus, names it to the function, and lets the function put events on that bus only', () => {
    const bus = resourcesOf(s, 'AWS::Events::EventBus');
    expect(bus).toHaveLength(1);
    expect(bus[0]![1].Properties).toEqual({ Name: 'dssss-Prod' });
    expect(apiFunction(s).Properties.Environment.Variables.DSSSS_EVENT_BUS).toBe('dssss-Prod');
    const put = statements(s).filter((st) => asList(st.Action).some((a) => String(a).startsWith('events:')));
    expect(put).toEqual([{ Sid: 'ChangeEventsToOneBus', Effect: 'Allow', Action: 'events:PutEvents', Resource: { 'Fn::GetAtt': [bus[0]![0], 'Arn'] } }]);
    expect(s.json.Outputs.EventBusName.Value).toEqual({ Ref: bus[0]![0] });
  });

  it('passes cdk-nag AwsSolutions with the bus', () => {
    expect(Annotations.fromStack(s.stack).findError('*', Match.anyValue())).toEqual([]);
  });

  it('without the switch: no bus, no variable, no events permission', () => {
    const plain = synth();
    expect(resourcesOf(plain, 'AWS::Events::EventBus')).toEqual([]);
    expect(apiFunction(plain).Properties.Environment.Variables.DSSSS_EVENT_BUS).toBeUndefined();
    expect(JSON.stringify(statements(plain))).not.toContain('events:');
  });
});

describe('DssssStack with a private endpoint', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ endpointType: 'private', vpcEndpointIds: ['vpce-0123456789abcdef0', 'vpce-0fedcba9876543210'] });
  });

  it('is a PRIVATE API that only the given VPC endpoints may invoke', () => {
    const api = only(s, 'AWS::ApiGateway::RestApi');
    expect(api.Properties.EndpointConfiguration).toEqual({
      Types: ['PRIVATE'],
      VpcEndpointIds: ['vpce-0123456789abcdef0', 'vpce-0fedcba9876543210'],
    });
    expect(api.Properties.Policy.Statement).toEqual([
      {
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'execute-api:Invoke',
        Resource: 'execute-api:/*',
        Condition: { StringNotEquals: { 'aws:SourceVpce': ['vpce-0123456789abcdef0', 'vpce-0fedcba9876543210'] } },
      },
      { Effect: 'Allow', Principal: { AWS: '*' }, Action: 'execute-api:Invoke', Resource: 'execute-api:/*' },
    ]);
  });

  it('passes cdk-nag AwsSolutions too', () => {
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
  });
});

describe('DssssStack refuses settings the function would refuse', () => {
  const attempt = (props: Settings) => () => new DssssStack(new App(), 'Dssss', { ...REQUIRED, ...props } as DssssStackProps);

  it('refuses a private endpoint without VPC endpoints', () => {
    expect(attempt({ endpointType: 'private' })).toThrow(/vpcEndpointIds/);
    expect(attempt({ endpointType: 'private', vpcEndpointIds: [] })).toThrow(/vpcEndpointIds/);
  });

  it('refuses VPC endpoints on a regional API, where they would do nothing', () => {
    expect(attempt({ vpcEndpointIds: ['vpce-0123456789abcdef0'] })).toThrow(/private/);
  });

  it('refuses a prefix that is not a Parameter Store path ending in "/"', () => {
    for (const parameterPrefix of ['dssss/', '/dssss', '/', '/a b/']) {
      expect(attempt({ parameterPrefix }), parameterPrefix).toThrow(/function would refuse.*DSSSS_PARAMETER_PREFIX/);
    }
  });

  it('refuses a prefix that could lie inside another deployment\'s secrets/ or meta/ tree', () => {
    for (const parameterPrefix of ['/dssss/secrets/', '/dssss/meta/team-b/', '/secrets/']) {
      expect(attempt({ parameterPrefix }), parameterPrefix).toThrow(/function would refuse.*"secrets" or "meta"/);
    }
  });

  it('refuses to deploy without distinguishedRoles, and takes "none" for no admin', () => {
    expect(attempt({ distinguishedRoles: undefined })).toThrow(/distinguishedRoles is required/);
    const s = synth({ distinguishedRoles: ['none'] });
    expect(apiFunction(s).Properties.Environment.Variables.DSSSS_DISTINGUISHED_ROLES).toBe('none');
  });

  it('refuses writer rules the function would refuse', () => {
    expect(attempt({ prefixWriters: 'app=web' })).toThrow(/function would refuse.*DSSSS_PREFIX_WRITERS/);
    expect(attempt({ prefixWriters: 'app/=web;app/=ops' })).toThrow(/appears twice/);
  });

  it('refuses a token lifetime outside 60..3600 seconds', () => {
    for (const tokenTtlSeconds of [59, 3601, 90.5]) {
      expect(attempt({ tokenTtlSeconds }), String(tokenTtlSeconds)).toThrow(/function would refuse.*DSSSS_TOKEN_TTL_SECONDS/);
    }
  });

  it('refuses a nonce mode, document age or server id the function would refuse', () => {
    expect(attempt({ nonceMode: 'sometimes' as 'off' })).toThrow(/function would refuse.*DSSSS_NONCE_MODE/);
    expect(attempt({ maxDocumentAgeSeconds: 10 })).toThrow(/function would refuse.*DSSSS_MAX_DOCUMENT_AGE_SECONDS/);
    expect(attempt({ serverId: 'has space' })).toThrow(/function would refuse.*DSSSS_SERVER_ID/);
  });

  it('refuses role names IAM would not accept, and account ids that are not 12 digits', () => {
    expect(attempt({ writerRoles: ['has space'] })).toThrow(/function would refuse.*DSSSS_WRITER_ROLES/);
    expect(attempt({ distinguishedRoles: ['a/b'] })).toThrow(/function would refuse.*DSSSS_DISTINGUISHED_ROLES/);
    expect(attempt({ allowedAccounts: ['12345'] })).toThrow(/function would refuse.*DSSSS_ALLOWED_ACCOUNTS/);
  });

  it('refuses an empty list rather than let the function fall back to its default', () => {
    expect(attempt({ distinguishedRoles: [] })).toThrow(/distinguishedRoles/);
    expect(attempt({ writerRoles: [] })).toThrow(/writerRoles/);
    expect(attempt({ allowedAccounts: [] })).toThrow(/allowedAccounts/);
  });

  it('refuses extra certificates that are not PEM or do not fit in the Lambda environment', () => {
    expect(attempt({ extraCertsPem: 'not a certificate' })).toThrow(/extraCertsPem/);
    const huge = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(4000)}\n-----END CERTIFICATE-----`;
    expect(attempt({ extraCertsPem: huge })).toThrow(/4 KB/);
  });
});

describe('the Lambda bundle (real esbuild bundling, as `cdk synth` does it)', () => {
  let dir: string;
  let files: string[];
  let bundle: string;
  beforeAll(() => {
    const s = synth({}, { bundle: true });
    const code = apiFunction(s).Properties.Code as { S3Key: string };
    dir = join(s.app.outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`);
    files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.mjs'));
    bundle = readFileSync(join(dir, 'index.mjs'), 'utf8');
  });

  it('is minified ES modules: the handler and the chunks it loads on demand, without source maps', () => {
    expect(files).toContain('index.mjs');
    expect(files.length).toBeGreaterThan(1);
    expect(readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.map'))).toEqual([]);
    let lines = 0;
    let indented = 0;
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect(text, file).not.toContain('sourceMappingURL');
      lines += text.split('\n').length;
      indented += text.split('\n').filter((line) => /^\s+\S/.test(line)).length;
    }
    // Minified: almost no line breaks survive, and those inside template literals (the
    // bundled PEM certificates, a few messages) are all that may be indented.
    expect(lines / files.length).toBeLessThan(40);
    expect(indented / lines).toBeLessThan(0.02);
  });

  it('gives bundled CommonJS code a require, and exports the handler', () => {
    for (const file of files) expect(readFileSync(join(dir, file), 'utf8').startsWith(REQUIRE_BANNER), file).toBe(true);
    expect(bundle).toMatch(/export\s*\{[^}]*\bas handler\b[^}]*\}|export\s*\{[^}]*\bhandler\b[^}]*\}/);
  });

  it('carries its own AWS SDK: every module it imports is a Node.js built-in or one of its own chunks', () => {
    let all = '';
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      all += text;
      const imported = [
        ...text.matchAll(/(?:^|[;\s}])import\s*(?:[\w$*{},\s]+?from\s*)?["']([^"']+)["']/g),
        ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
      ].map((m) => m[1]!);
      for (const specifier of imported) {
        if (isBuiltin(specifier)) continue;
        expect(specifier, `${file} imports ${specifier}`).toMatch(/^\.\.?\//);
        expect(existsSync(join(dir, dirname(file), specifier)), `${file} imports ${specifier}`).toBe(true);
      }
    }
    expect(all).toContain('GenerateDataKey');
    expect(all).toContain('GetParametersByPath');
    expect(all).toContain('DescribeInstances');
  });

  it('keeps the EC2 and IAM clients out of what a cold GET loads: the handler and its static imports', () => {
    const loaded = new Set<string>();
    const visit = (file: string) => {
      if (loaded.has(file)) return;
      loaded.add(file);
      const text = readFileSync(join(dir, file), 'utf8');
      for (const m of text.matchAll(/(?:^|[;\s}])import\s*(?:[\w$*{},\s]+?from\s*)?["'](\.[^"']+)["']/g)) visit(join(dirname(file), m[1]!));
    };
    visit('index.mjs');
    const eager = [...loaded].map((f) => readFileSync(join(dir, f), 'utf8')).join('');
    expect(eager).not.toContain('DescribeInstances');
    expect(eager).not.toContain('GetInstanceProfile');
  });
});
