// The deployed secret store: one Lambda function behind an API Gateway REST API, a
// customer-managed KMS key for the seal key, and IAM scoped to the parameter prefix and that key.

import { fileURLToPath } from 'node:url';
import {
  AssetHashType,
  Aws,
  CfnOutput,
  CfnResource,
  DockerImage,
  Duration,
  RemovalPolicy,
  Stack,
  Token,
  Validations,
  type StackProps,
} from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct, IConstruct } from 'constructs';
import { bundleLambda, INSTANCE_EVENTS_HANDLER, LAMBDA_HANDLER } from './bundle';
import { DEFAULT_CONCURRENCY_LIMIT, Monitoring } from './monitoring';
import { ConfigError, DEFAULT_PARAMETER_PREFIX, DEFAULT_TOKEN_TTL_SECONDS, loadConfig } from '../lambda/config';

export type EndpointType = 'regional' | 'private';

/** A setting the stack refuses; `infra/app.ts` prints it as one line. */
export class StackSettingsError extends Error {
  override readonly name = 'StackSettingsError';
}

export interface DssssStackProps extends StackProps {
  /**
   * Roles that may do everything (DSSSS_DISTINGUISHED_ROLES): names of the deployment's
   * account, `account:name`, or ['none'] for no admin. Required: there is no default admin.
   */
  readonly distinguishedRoles: readonly string[];
  /** Roles that may create secrets under any name (DSSSS_WRITER_ROLES). Default: unset, the function's own rule (a role creates under `<its name>/`). */
  readonly writerRoles?: readonly string[];
  /**
   * Who may create under which prefix (DSSSS_PREFIX_WRITERS), e.g. `app/=web,deploy;billing/=billing`;
   * the most specific prefix wins. Default: unset.
   */
  readonly prefixWriters?: string;
  /** IAM users that may log in through IAM, each as the role of the same name (DSSSS_IAM_USERS). Default: none. */
  readonly iamUsers?: readonly string[];
  /** Nonce binding of EC2 logins (DSSSS_NONCE_MODE): 'off', 'optional' (default) or 'required'. */
  readonly nonceMode?: 'off' | 'optional' | 'required';
  /** Refuse identity documents of instances started longer ago (DSSSS_MAX_DOCUMENT_AGE_SECONDS). Default: no limit. */
  readonly maxDocumentAgeSeconds?: number;
  /** Accounts whose instances may log in. Default: the account the stack is deployed in. */
  readonly allowedAccounts?: readonly string[];
  /** Token lifetime in seconds, 60 to 3600. Default: 900. */
  readonly tokenTtlSeconds?: number;
  /** Parameter Store path for everything the store keeps; starts and ends with "/". Default: '/dssss/'. */
  readonly parameterPrefix?: string;
  /** 'regional' (default), or 'private': reachable only through `vpcEndpointIds`. */
  readonly endpointType?: EndpointType;
  /** Interface VPC endpoints (com.amazonaws.<region>.execute-api) allowed to call a private API. */
  readonly vpcEndpointIds?: readonly string[];
  /** Further trusted identity-document signing certificates, PEM text (DSSSS_EXTRA_CERTS). */
  readonly extraCertsPem?: string;
  /**
   * What IAM-login clients must sign into X-Dssss-Server-Id (DSSSS_SERVER_ID), so a request
   * signed for another service, or for another deployment, cannot log in here.
   * Default: `<stack name>-<account>-<region>`, unique per deployment.
   */
  readonly serverId?: string;
  /** Stage throttling: steady requests per second. Default: 100. */
  readonly throttlingRateLimit?: number;
  /** Stage throttling: burst. Default: 200. */
  readonly throttlingBurstLimit?: number;
  /**
   * Create the account's API Gateway CloudWatch Logs role (AWS::ApiGateway::Account), which
   * access logs need. It is one setting per account and region: turn this off when the
   * account already has it, e.g. from another dssss deployment. Default: true.
   */
  readonly apiGatewayCloudWatchRole?: boolean;
  /**
   * Publish every change (put, delete, restore, purge, seal-key rotation) to an EventBridge
   * bus the stack creates, `dssss-<stack name>` (DSSSS_EVENT_BUS); the function may put
   * events on that bus and no other. Default: false.
   */
  readonly changeEvents?: boolean;
  /** Alarms go to this existing SNS topic. Give this or `alarmEmail`, or neither (alarms only on the dashboard). */
  readonly alarmTopicArn?: string;
  /** Alarms go to a new SNS topic with this address subscribed (it must confirm the subscription). */
  readonly alarmEmail?: string;
  /** The account's Lambda concurrency quota, for the alarm at 80 % of it. Default: 1000. */
  readonly concurrencyLimit?: number;
  /**
   * Nonce bindings an earlier release kept in Parameter Store (DSSSS_LEGACY_NONCE_BINDINGS): a
   * binding missing from the table is looked up there and moved over. true: always; false:
   * never. Default: only if the deployment has any there (looked up once).
   */
  readonly legacyNonceBindings?: boolean;
}

// Lambda allows 4 KB of environment in all; the other variables take well under 1 KB.
const MAX_EXTRA_CERTS_CHARS = 3000;
// Known only at deploy time; the function's config check at synth gets stand-ins.
const STAND_IN_KEY_ARN = 'arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000';
const STAND_IN_ACCOUNT = '000000000000';

/** The asset's source; what is deployed is the bundle built from it. */
const LAMBDA_SOURCE = fileURLToPath(new URL('../lambda', import.meta.url));

export class DssssStack extends Stack {
  readonly function: lambda.Function;
  readonly api: apigateway.LambdaRestApi;
  readonly key: kms.Key;
  readonly bookkeeping: dynamodb.Table;
  readonly instanceEvents: lambda.Function;
  /** Instance state changes that could not be recorded. */
  instanceEventsFailed!: sqs.Queue;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: DssssStackProps) {
    super(scope, id, props);
    const settings = validate(props, this.stackName);
    const prefix = settings.parameterPrefix;

    const bus = settings.eventBus === undefined ? undefined : new events.EventBus(this, 'ChangeEvents', { eventBusName: settings.eventBus });

    const functionLogs = new logs.LogGroup(this, 'FunctionLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Per-instance bookkeeping (lambda/adapters/dynamo-bookkeeping.ts): nonce bindings and the
    // instance states EC2 reports. On demand, so a fleet booting at once is not held to
    // Parameter Store's account-wide 40 reads and 3 writes a second. Only bookkeeping: losing
    // it loses no secret (bindings are made again at the instances' next logins).
    this.bookkeeping = new dynamodb.Table(this, 'Bookkeeping', {
      partitionKey: { name: 'k', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'x',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // A role of our own instead of the managed AWSLambdaBasicExecutionRole: it may write
    // to its one log group and nothing else it does not need. The policy is inline, so the
    // role never exists without it.
    const role = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'dssss function: Parameter Store under the prefix, the seal key, instance -> role lookups',
      inlinePolicies: {
        dssss: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'OwnLogGroup',
              actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              resources: [functionLogs.logGroupArn],
            }),
            new iam.PolicyStatement({
              sid: 'SecretsUnderPrefix',
              // Exactly the calls lambda/adapters/ssm-store.ts makes, on the two trees it
              // keeps: not `<prefix>*`, which would reach into another deployment nested
              // under this one's prefix (lambda/config.ts refuses prefixes that could nest
              // inside these two trees).
              actions: [
                'ssm:GetParameter',
                'ssm:GetParameters',
                'ssm:GetParametersByPath',
                'ssm:GetParameterHistory',
                'ssm:PutParameter',
                'ssm:DeleteParameter',
              ],
              // Parameter ARNs keep the name's leading slash: arn:...:parameter/dssss/secrets/x.
              resources: [parameterArn(`${prefix}secrets/*`), parameterArn(`${prefix}meta/*`)],
            }),
            new iam.PolicyStatement({
              sid: 'ListAllSecrets',
              // Listing everything asks GetParametersByPath for the tree's root itself; the meta
              // tree's root once per deployment, whether an earlier release left nonce bindings there.
              actions: ['ssm:GetParametersByPath'],
              resources: [parameterArn(`${prefix}secrets`), parameterArn(`${prefix}meta`)],
            }),
            new iam.PolicyStatement({
              sid: 'ReadBookkeeping',
              actions: ['dynamodb:GetItem'],
              resources: [this.bookkeeping.tableArn],
            }),
            new iam.PolicyStatement({
              sid: 'BindNonces',
              // Nonce bindings only: instance states are the instance-events function's to write.
              actions: ['dynamodb:PutItem'],
              resources: [this.bookkeeping.tableArn],
              conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['nonce-*'] } },
            }),
            new iam.PolicyStatement({
              sid: 'InstanceLookup',
              // DescribeInstances supports no resource-level permissions.
              actions: ['ec2:DescribeInstances'],
              resources: ['*'],
            }),
            new iam.PolicyStatement({
              sid: 'InstanceProfileLookup',
              actions: ['iam:GetInstanceProfile'],
              resources: [`arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:instance-profile/*`],
            }),
            new iam.PolicyStatement({
              sid: 'RoleIdLookup',
              // A secret's roles are pinned to their unique ids when it is written.
              actions: ['iam:GetRole'],
              resources: [`arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/*`],
            }),
            ...(bus === undefined
              ? []
              : [new iam.PolicyStatement({ sid: 'ChangeEventsToOneBus', actions: ['events:PutEvents'], resources: [bus.eventBusArn] })]),
          ],
        }),
      },
    });

    this.key = new kms.Key(this, 'SealKey', {
      description: `dssss ${this.stackName}: wraps the seal key stored under ${prefix}`,
      enableKeyRotation: true,
      // Losing the key loses every secret: it outlives the stack.
      removalPolicy: RemovalPolicy.RETAIN,
      alias: `alias/dssss-${this.stackName}`,
      // Given explicitly, so CDK's default (`kms:*` for the account) is not added: the
      // account administers the key but cannot use it, and only the function may unwrap.
      policy: sealKeyPolicy(role, prefix),
    });

    // esbuild on this machine (infra/bundle.ts), no Docker: the image is never pulled. One
    // artifact, both functions' entries.
    const code = lambda.Code.fromAsset(LAMBDA_SOURCE, {
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        image: DockerImage.fromRegistry('scratch'),
        local: {
          tryBundle(outputDir: string): boolean {
            bundleLambda(outputDir);
            return true;
          },
        },
      },
    });

    this.function = new lambda.Function(this, 'Function', {
      code,
      handler: LAMBDA_HANDLER,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      // Lambda allots CPU in proportion to memory, and the work here is CPU-bound: a cold
      // start verifies a PKCS#7 signature and unwraps the seal key, and every request does
      // cryptography. 512 MB is bought for that CPU (the heap needs far less), at a cost
      // that stays small for a low-traffic service.
      memorySize: 512,
      // API Gateway's own limit: a dependency that hangs is cut off by the SDK's per-attempt
      // deadlines (lambda/runtime.ts) and answered with 503 well before this.
      timeout: Duration.seconds(29),
      role,
      logGroup: functionLogs,
      environment: environment(settings, this.key.keyArn, this.bookkeeping.tableName),
    });

    this.instanceEvents = this.instanceEventsFunction(code);

    // aws-lambda always adds DependsOn for the role, which the Role GetAtt already implies;
    // cfn-lint warns about the redundancy (W3005). Silenced on these resources only.
    for (const fn of [this.function, this.instanceEvents]) {
      (fn.node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
    }

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const isPrivate = settings.endpointType === 'private';
    const vpcEndpoints = settings.vpcEndpointIds.map((vpcEndpointId, i) =>
      ec2.InterfaceVpcEndpoint.fromInterfaceVpcEndpointAttributes(this, `VpcEndpoint${i}`, { vpcEndpointId, port: 443 }),
    );

    this.api = new apigateway.LambdaRestApi(this, 'Api', {
      restApiName: `dssss-${this.stackName}`,
      handler: this.function,
      proxy: true,
      description: 'dssss: EC2 identity documents in, sealed secrets out',
      endpointConfiguration: isPrivate
        ? { types: [apigateway.EndpointType.PRIVATE], vpcEndpoints }
        : { types: [apigateway.EndpointType.REGIONAL] },
      cloudWatchRole: settings.apiGatewayCloudWatchRole,
      deployOptions: {
        stageName: 'prod',
        throttlingRateLimit: settings.throttlingRateLimit,
        throttlingBurstLimit: settings.throttlingBurstLimit,
        // Execution logs at ERROR only, and never request data: headers carry credentials.
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        accessLogDestination: new apigateway.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigateway.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    if (isPrivate) this.api.grantInvokeFromVpcEndpointsOnly(vpcEndpoints);
    // The construct's own "Endpoint" output would repeat ApiUrl under a generated name.
    this.api.node.tryRemoveChild('Endpoint');

    this.monitoring = new Monitoring(this, 'Monitoring', {
      fn: this.function,
      api: this.api,
      deployment: settings.deployment,
      alarmTopicArn: props.alarmTopicArn,
      alarmEmail: props.alarmEmail,
      concurrencyLimit: settings.concurrencyLimit,
      instanceEventsFailed: this.instanceEventsFailed,
    });
    Validations.of(this.instanceEventsFailed.node.defaultChild ?? this.instanceEventsFailed).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the instance-events function and its EventBridge target; an alarm watches it.',
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'The dssss API: give this to the dssss client' });
    new CfnOutput(this, 'KmsKeyArn', { value: this.key.keyArn, description: 'The KMS key that wraps the seal key' });
    new CfnOutput(this, 'ServerId', { value: settings.serverId, description: 'IAM login: clients sign this as X-Dssss-Server-Id (DSSSS_SERVER_ID)' });
    if (bus !== undefined) {
      new CfnOutput(this, 'EventBusName', { value: bus.eventBusName, description: 'Change events (source dssss, detail type "dssss change"): put rules on this bus' });
    }
    new CfnOutput(this, 'ParameterPrefix', { value: prefix, description: 'Where in Parameter Store the secrets live' });

    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName, description: 'The CloudWatch dashboard of this deployment' });

    this.acknowledgeNagFindings(role, prefix, settings.apiGatewayCloudWatchRole);
    if (this.monitoring.topic instanceof sns.Topic) {
      Validations.of(this.monitoring.topic.node.defaultChild ?? this.monitoring.topic).acknowledge({
        id: 'AwsSolutions-SNS2',
        reason:
          'Alarm notifications carry alarm names and metric values, never secret data; CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a key of its own would cost more than it protects. The topic refuses non-TLS publishers.',
      });
    }
  }

  /**
   * EC2 reports every instance's state changes to the account's default bus; this function
   * records them in the bookkeeping table, so an IAM login made with the role credentials of
   * an instance that has stopped or terminated is refused without an EC2 call per login
   * (DescribeInstances is a bucket of 100 refilled at 20 a second, account-wide).
   */
  private instanceEventsFunction(code: lambda.Code): lambda.Function {
    const logGroup = new logs.LogGroup(this, 'InstanceEventsLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new iam.Role(this, 'InstanceEventsRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'dssss instance-events function: records EC2 instance states in the bookkeeping table',
      inlinePolicies: {
        dssss: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({ sid: 'OwnLogGroup', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }),
            new iam.PolicyStatement({
              sid: 'RecordInstanceStates',
              actions: ['dynamodb:PutItem'],
              resources: [this.bookkeeping.tableArn],
              conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['instance-*'] } },
            }),
          ],
        }),
      },
    });
    // A state that cannot be recorded (the table failing past Lambda's own two retries, or
    // EventBridge failing to invoke the function for a day) lands here, and an alarm fires:
    // a lost "terminated" would let that instance's role credentials log in until they expire.
    this.instanceEventsFailed = new sqs.Queue(this, 'InstanceEventsFailed', {
      retentionPeriod: Duration.days(14),
      enforceSSL: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
    });
    const fn = new lambda.Function(this, 'InstanceEvents', {
      code,
      handler: INSTANCE_EVENTS_HANDLER,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.seconds(30),
      role,
      logGroup,
      environment: { DSSSS_BOOKKEEPING_TABLE: this.bookkeeping.tableName, DSSSS_ACCOUNT_ID: Aws.ACCOUNT_ID },
      retryAttempts: 2,
      deadLetterQueue: this.instanceEventsFailed,
    });
    new events.Rule(this, 'InstanceStateChanges', {
      description: `dssss ${this.stackName}: EC2 instance state changes, recorded for IAM logins made with instance role credentials`,
      eventPattern: { source: ['aws.ec2'], detailType: ['EC2 Instance State-change Notification'] },
      // EventBridge keeps trying to invoke the function for a day (then the queue above); once
      // invoked, a failing write is retried twice by Lambda, then queued.
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 185, maxEventAge: Duration.hours(24), deadLetterQueue: this.instanceEventsFailed })],
    });
    return fn;
  }

  /** The cdk-nag findings that do not fit this design, each acknowledged where it arises, with the reason. */
  private acknowledgeNagFindings(role: iam.Role, prefix: string, cloudWatchRole: boolean): void {
    const ack = (scope: IConstruct, id: string, reason: string) => Validations.of(scope).acknowledge({ id, reason });
    // On the CloudFormation resource itself, so the reason is recorded where the finding is.
    const cfn = (scope: IConstruct): IConstruct => scope.node.defaultChild ?? scope;
    ack(
      cfn(role),
      'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeInstances has no resource-level permissions; the function asks only for the instance named in a verified identity document.',
    );
    ack(
      cfn(role),
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:instance-profile/*]',
      'The instance profile is named by the instance being looked up, so it cannot be listed in advance; iam:GetInstanceProfile is read-only and limited to this account.',
    );
    ack(
      cfn(role),
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]',
      'A secret may name any role of the account; iam:GetRole is read-only, limited to this account, and used only to pin the named roles to their unique ids.',
    );
    for (const tree of ['secrets', 'meta']) {
      ack(
        cfn(role),
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${prefix}${tree}/*]`,
        `One parameter per ${tree === 'secrets' ? 'secret, named by its users' : 'piece of bookkeeping (seal keys, nonce bindings)'}: the wildcard covers the deployment's own ${prefix}${tree}/ tree and nothing outside it.`,
      );
    }
    for (const method of this.api.methods) {
      ack(
        cfn(method),
        'AwsSolutions-APIG4',
        'The function authenticates every request itself: an EC2 identity document at login, then a short-lived sealed token; no API Gateway authorizer type fits that.',
      );
      ack(
        cfn(method),
        'AwsSolutions-COG4',
        'Callers are EC2 instances proving who they are with signed identity documents, not Cognito users; the function authenticates every request.',
      );
    }
    ack(
      cfn(this.api),
      'AwsSolutions-APIG2',
      'The function validates every request (names, headers, schema-checked bodies) and answers 400 with the reason; a gateway model would duplicate it.',
    );
    ack(
      cfn(this.api.deploymentStage),
      'AwsSolutions-APIG3',
      'Stage throttling bounds the request rate and the function rejects bad credentials cheaply; a WAF web ACL is an optional extra the deployer can associate.',
    );
    if (cloudWatchRole) {
      ack(
        cfn(this.api.node.findChild('CloudWatchRole')),
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        'The account-level role API Gateway needs to write access logs; AWS maintains AmazonAPIGatewayPushToCloudWatchLogs for exactly that purpose.',
      );
    }
  }
}

const parameterArn = (name: string) => `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${name}`;

/**
 * What the account's own IAM may do with the key: everything an administrator needs
 * (describe, rotate, tag, alias, disable, schedule deletion, and PutKeyPolicy, which the
 * key must keep or KMS refuses the policy as a lockout), and nothing that opens data:
 * no Decrypt, Encrypt, ReEncrypt, GenerateDataKey*, and no CreateGrant, which would
 * let an administrator hand those to anyone. Break-glass is PutKeyPolicy: an
 * administrator who must read the secrets without the function adds a statement, a
 * deliberate, separately permissioned act that CloudTrail records.
 */
export const KEY_ADMIN_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:DeleteAlias',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListKeyRotations',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:RetireGrant',
  'kms:RevokeGrant',
  'kms:RotateKeyOnDemand',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
] as const;

function sealKeyPolicy(role: iam.IRole, prefix: string): iam.PolicyDocument {
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'AccountAdministersTheKey',
        principals: [new iam.AccountRootPrincipal()],
        actions: [...KEY_ADMIN_ACTIONS],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'FunctionUnwrapsTheSealKey',
        // The only principal that may use the key, and only with the deployment's own
        // encryption context (lambda/adapters/kms-keys.ts); no IAM policy can add another.
        principals: [new iam.ArnPrincipal(role.roleArn)],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:EncryptionContext:dssss:prefix': prefix } },
      }),
    ],
  });
}

/**
 * Access log fields: who, when, what, how it went. Only `$context` values that hold no
 * request data: never a header (Authentication, Reauthentication carry credentials), never the body.
 */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  resourcePath: '$context.resourcePath',
  path: '$context.path',
  status: '$context.status',
  responseLength: '$context.responseLength',
  integrationLatency: '$context.integrationLatency',
  userAgent: '$context.identity.userAgent',
});

interface Settings {
  readonly distinguishedRoles: readonly string[];
  readonly homeAccount: string;
  readonly writerRoles: readonly string[] | undefined;
  readonly prefixWriters: string | undefined;
  readonly iamUsers: readonly string[] | undefined;
  readonly nonceMode: string | undefined;
  readonly maxDocumentAgeSeconds: number | undefined;
  readonly allowedAccounts: readonly string[];
  readonly tokenTtlSeconds: number;
  readonly parameterPrefix: string;
  readonly endpointType: EndpointType;
  readonly vpcEndpointIds: readonly string[];
  readonly extraCertsPem: string | undefined;
  readonly serverId: string;
  readonly throttlingRateLimit: number;
  readonly throttlingBurstLimit: number;
  readonly apiGatewayCloudWatchRole: boolean;
  /** The change-event bus's name, when there is one. */
  readonly eventBus: string | undefined;
  /** DSSSS_DEPLOYMENT: the stack's name, so each deployment's metrics are its own. */
  readonly deployment: string;
  readonly concurrencyLimit: number;
  readonly legacyNonceBindings: boolean | undefined;
}

function validate(props: DssssStackProps, stackName: string): Settings {
  const endpointType = props.endpointType ?? 'regional';
  if (endpointType !== 'regional' && endpointType !== 'private') {
    throw new StackSettingsError(`endpointType: "regional" or "private", got ${JSON.stringify(endpointType)}`);
  }
  const vpcEndpointIds = props.vpcEndpointIds ?? [];
  if (endpointType === 'private' && vpcEndpointIds.length === 0) {
    throw new StackSettingsError('endpointType "private" needs vpcEndpointIds: the execute-api interface VPC endpoints allowed to call the API');
  }
  if (endpointType === 'regional' && vpcEndpointIds.length > 0) {
    throw new StackSettingsError('vpcEndpointIds apply only with endpointType "private"');
  }

  // An empty list would reach the function as an unset variable, i.e. the default.
  for (const [name, list] of Object.entries({ distinguishedRoles: props.distinguishedRoles, writerRoles: props.writerRoles, iamUsers: props.iamUsers, allowedAccounts: props.allowedAccounts })) {
    if (list !== undefined && list.length === 0) throw new StackSettingsError(`${name}: give at least one, or leave it out for the default`);
  }

  const extraCertsPem = props.extraCertsPem?.trim() || undefined;
  if (extraCertsPem !== undefined) {
    // Anything else would reach the function as a file name.
    if (!extraCertsPem.startsWith('-----BEGIN CERTIFICATE-----')) {
      throw new StackSettingsError('extraCertsPem: PEM text starting with -----BEGIN CERTIFICATE-----');
    }
    if (extraCertsPem.length > MAX_EXTRA_CERTS_CHARS) {
      throw new StackSettingsError(`extraCertsPem: ${extraCertsPem.length} characters; Lambda's 4 KB environment limit leaves room for ${MAX_EXTRA_CERTS_CHARS}`);
    }
  }

  const positive = (name: string, value: number) => {
    if (!Number.isFinite(value) || value <= 0) throw new StackSettingsError(`${name}: a positive number, got ${value}`);
    return value;
  };

  if (props.distinguishedRoles === undefined) {
    throw new StackSettingsError('distinguishedRoles is required: the admin roles, or ["none"] for no admin');
  }

  const settings: Settings = {
    distinguishedRoles: props.distinguishedRoles,
    writerRoles: props.writerRoles,
    prefixWriters: props.prefixWriters?.trim() || undefined,
    iamUsers: props.iamUsers,
    nonceMode: props.nonceMode,
    maxDocumentAgeSeconds: props.maxDocumentAgeSeconds,
    allowedAccounts: props.allowedAccounts ?? [Aws.ACCOUNT_ID],
    homeAccount: Aws.ACCOUNT_ID,
    tokenTtlSeconds: props.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS,
    parameterPrefix: props.parameterPrefix ?? DEFAULT_PARAMETER_PREFIX,
    endpointType,
    vpcEndpointIds,
    extraCertsPem,
    serverId: props.serverId?.trim() || `${stackName}-${Aws.ACCOUNT_ID}-${Aws.REGION}`,
    throttlingRateLimit: positive('throttlingRateLimit', props.throttlingRateLimit ?? 100),
    throttlingBurstLimit: positive('throttlingBurstLimit', props.throttlingBurstLimit ?? 200),
    apiGatewayCloudWatchRole: props.apiGatewayCloudWatchRole ?? true,
    eventBus: props.changeEvents === true ? `dssss-${stackName}` : undefined,
    deployment: stackName,
    concurrencyLimit: positive('concurrencyLimit', props.concurrencyLimit ?? DEFAULT_CONCURRENCY_LIMIT),
    legacyNonceBindings: props.legacyNonceBindings,
  };
  if (props.alarmTopicArn !== undefined && props.alarmEmail !== undefined) {
    throw new StackSettingsError('alarmTopicArn and alarmEmail: give one of them (the topic, or an address for a new topic)');
  }
  if (props.alarmTopicArn !== undefined && !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$/.test(props.alarmTopicArn)) {
    throw new StackSettingsError(`alarmTopicArn: an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), got ${JSON.stringify(props.alarmTopicArn)}`);
  }
  if (props.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail)) {
    throw new StackSettingsError(`alarmEmail: an e-mail address, got ${JSON.stringify(props.alarmEmail)}`);
  }

  // One rule, one place: the function's own config parser judges the environment the
  // stack will give it, so a value it would refuse fails `cdk synth`, not every cold start.
  const standIns = {
    ...settings,
    allowedAccounts: settings.allowedAccounts.map((a) => (Token.isUnresolved(a) ? STAND_IN_ACCOUNT : a)),
    homeAccount: STAND_IN_ACCOUNT,
    serverId: Token.isUnresolved(settings.serverId) ? `${stackName}-${STAND_IN_ACCOUNT}-us-east-1` : settings.serverId,
  };
  try {
    loadConfig(environment(standIns, STAND_IN_KEY_ARN));
  } catch (err) {
    if (err instanceof ConfigError) throw new StackSettingsError(`the function would refuse this configuration: ${err.message}`);
    throw err;
  }
  return settings;
}

/** The function's configuration: the variables lambda/config.ts reads. */
function environment(settings: Settings, keyArn: string, bookkeepingTable?: string): Record<string, string> {
  const env: Record<string, string> = {
    DSSSS_BACKEND: 'aws',
    DSSSS_KMS_KEY_ID: keyArn,
    DSSSS_PARAMETER_PREFIX: settings.parameterPrefix,
    DSSSS_ALLOWED_ACCOUNTS: settings.allowedAccounts.join(','),
    // Bare role names in secrets mean roles of the account the stack is deployed in.
    DSSSS_ACCOUNT_ID: settings.homeAccount,
    DSSSS_DISTINGUISHED_ROLES: settings.distinguishedRoles.join(','),
    DSSSS_TOKEN_TTL_SECONDS: String(settings.tokenTtlSeconds),
    DSSSS_SERVER_ID: settings.serverId,
    DSSSS_DEPLOYMENT: settings.deployment,
  };
  if (bookkeepingTable !== undefined) env.DSSSS_BOOKKEEPING_TABLE = bookkeepingTable;
  if (settings.legacyNonceBindings !== undefined) env.DSSSS_LEGACY_NONCE_BINDINGS = String(settings.legacyNonceBindings);
  if (settings.writerRoles !== undefined) env.DSSSS_WRITER_ROLES = settings.writerRoles.join(',');
  if (settings.prefixWriters !== undefined) env.DSSSS_PREFIX_WRITERS = settings.prefixWriters;
  if (settings.iamUsers !== undefined) env.DSSSS_IAM_USERS = settings.iamUsers.join(',');
  if (settings.nonceMode !== undefined) env.DSSSS_NONCE_MODE = settings.nonceMode;
  if (settings.maxDocumentAgeSeconds !== undefined) env.DSSSS_MAX_DOCUMENT_AGE_SECONDS = String(settings.maxDocumentAgeSeconds);
  if (settings.extraCertsPem !== undefined) env.DSSSS_EXTRA_CERTS = settings.extraCertsPem;
  if (settings.eventBus !== undefined) env.DSSSS_EVENT_BUS = settings.eventBus;
  return env;
}
