// The CDK app (`npx cdk synth|deploy`, see cdk.json): CDK context -> DssssStack props, with
// the cdk-nag AwsSolutions checks run at synth. Example: npx cdk deploy -c writerRoles=ci,deployer

import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DssssStack, type DssssStackProps, type EndpointType } from './stack';

const app = new App();
const context = (key: string): unknown => app.node.tryGetContext(key);

/** `-c key=a,b` on the command line gives a string; cdk.json may give an array. */
function list(key: string): string[] | undefined {
  const value = context(key);
  if (value === undefined || value === null || value === '') return undefined;
  const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

function number(key: string): number | undefined {
  const value = context(key);
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`context ${key}: a number, got ${JSON.stringify(value)}`);
  return n;
}

function string(key: string): string | undefined {
  const value = context(key);
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

function boolean(key: string): boolean | undefined {
  const value = context(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`context ${key}: true or false, got ${JSON.stringify(value)}`);
}

const extraCertsFile = string('extraCertsFile');
const props: DssssStackProps = {
  description: 'dssss: a serverless secret store (API Gateway, Lambda, Parameter Store, KMS)',
  distinguishedRoles: list('distinguishedRoles'),
  writerRoles: list('writerRoles'),
  iamUsers: list('iamUsers'),
  nonceMode: string('nonceMode') as DssssStackProps['nonceMode'],
  maxDocumentAgeSeconds: number('maxDocumentAgeSeconds'),
  allowedAccounts: list('allowedAccounts'),
  tokenTtlSeconds: number('tokenTtlSeconds'),
  parameterPrefix: string('parameterPrefix'),
  endpointType: string('endpointType') as EndpointType | undefined,
  vpcEndpointIds: list('vpcEndpointIds'),
  extraCertsPem: extraCertsFile !== undefined ? readFileSync(extraCertsFile, 'utf8') : string('extraCertsPem'),
  serverId: string('serverId'),
  throttlingRateLimit: number('throttlingRateLimit'),
  throttlingBurstLimit: number('throttlingBurstLimit'),
  apiGatewayCloudWatchRole: boolean('apiGatewayCloudWatchRole'),
};

// No `env`: the stack is environment-agnostic, so synth needs no credentials and no
// lookups, and `cdk deploy` targets the account and region of the current credentials.
new DssssStack(app, string('stackName') ?? 'Dssss', props);

// cdk-nag 3 is a policy-validation plugin: any finding not acknowledged in the stack fails
// synth. The acknowledgments and their reasons are written into the template's Metadata.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
