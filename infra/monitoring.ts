// What an operator watches: alarms on the API's 5xx rate, the function's errors, throttles and
// concurrency, dependency throttling and refused logins, optionally sent to an SNS topic, and
// one dashboard of the metrics the function emits (lambda/metrics.ts names them).

import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { DIMENSION, METRIC, METRICS_NAMESPACE } from '../lambda/metrics';

/** Lambda's default concurrency quota per account and Region; the alarm fires at 80 % of it. */
export const DEFAULT_CONCURRENCY_LIMIT = 1000;

/** Each alarm's id, what it watches and when it fires: the README's runbook has one entry per id. */
export const ALARMS = {
  Api5xxRate: 'more than 5 % of API requests answered 5xx, in 3 of 5 minutes',
  FunctionErrors: 'the function failed (crashed or timed out) at least once in 5 minutes',
  FunctionThrottles: 'Lambda refused to run the function (concurrency exhausted) at least once in 5 minutes',
  DependencyThrottling: 'Parameter Store, KMS, EC2, IAM, STS, DynamoDB or EventBridge throttled the function 10 or more times in 5 minutes',
  RefusedLoginSpike: '100 or more logins refused (401) in 5 minutes',
  ConcurrencyNearLimit: 'the account\'s Lambda functions ran at 80 % or more of its concurrency limit, in 3 of 5 minutes',
  InstanceStatesLost: 'an EC2 instance state change could not be recorded (it waits in the InstanceEventsFailed queue)',
} as const;

export interface MonitoringProps {
  readonly fn: lambda.IFunction;
  readonly api: apigateway.RestApi;
  /** The function's DSSSS_DEPLOYMENT: the Deployment dimension of its metrics. */
  readonly deployment: string;
  /** Where alarms go: an existing topic, or a new one with this e-mail subscribed. */
  readonly alarmTopicArn?: string | undefined;
  readonly alarmEmail?: string | undefined;
  readonly concurrencyLimit?: number | undefined;
  /** The instance-events function's dead-letter queue. */
  readonly instanceEventsFailed: sqs.IQueue;
}

export class Monitoring extends Construct {
  readonly alarms: Record<keyof typeof ALARMS, cloudwatch.Alarm>;
  readonly topic: sns.ITopic | undefined;
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { fn, api, deployment } = props;
    const fiveMinutes = Duration.minutes(5);
    const minute = Duration.minutes(1);
    const own = (name: string, statistic = 'Sum', period = fiveMinutes) =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { [DIMENSION.deployment]: deployment }, statistic, period });
    // Every value of a dimension the function emits (operations, codes, services), as one graph.
    const byDimension = (name: string, dimensions: string[], label: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},${[DIMENSION.deployment, ...dimensions].join(',')}} MetricName="${name}" ${DIMENSION.deployment}="${deployment}"', 'Sum', 300)`,
        label,
        period: fiveMinutes,
      });

    const limit = props.concurrencyLimit ?? DEFAULT_CONCURRENCY_LIMIT;
    const alarm = (alarmId: keyof typeof ALARMS, metric: cloudwatch.IMetric, threshold: number, evaluation: { periods: number; datapoints: number }) =>
      new cloudwatch.Alarm(this, alarmId, {
        alarmName: `dssss-${Stack.of(this).stackName}-${alarmId}`,
        alarmDescription: `dssss ${Stack.of(this).stackName}: ${ALARMS[alarmId]}. Runbook: README, "Operating dssss", ${alarmId}.`,
        metric,
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: evaluation.periods,
        datapointsToAlarm: evaluation.datapoints,
        // No traffic is not a fault.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const once = { periods: 1, datapoints: 1 };
    const threeOfFive = { periods: 5, datapoints: 3 };

    const serverErrorRate = new cloudwatch.MathExpression({
      expression: '100 * errors / MAX([requests, 1])',
      usingMetrics: { errors: api.metricServerError({ period: minute, statistic: 'Sum' }), requests: api.metricCount({ period: minute, statistic: 'Sum' }) },
      label: '5xx, % of requests',
      period: minute,
    });
    this.alarms = {
      Api5xxRate: alarm('Api5xxRate', serverErrorRate, 5, threeOfFive),
      FunctionErrors: alarm('FunctionErrors', fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }), 1, once),
      FunctionThrottles: alarm('FunctionThrottles', fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }), 1, once),
      DependencyThrottling: alarm('DependencyThrottling', own(METRIC.dependencyThrottles), 10, once),
      RefusedLoginSpike: alarm('RefusedLoginSpike', own(METRIC.loginFailures), 100, once),
      // The limit is the account's, shared by every function in the Region: watch the account's total.
      ConcurrencyNearLimit: alarm(
        'ConcurrencyNearLimit',
        new cloudwatch.Metric({ namespace: 'AWS/Lambda', metricName: 'ConcurrentExecutions', period: minute, statistic: 'Maximum' }),
        Math.ceil(limit * 0.8),
        threeOfFive,
      ),
      InstanceStatesLost: alarm('InstanceStatesLost', props.instanceEventsFailed.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' }), 1, once),
    };

    if (props.alarmTopicArn !== undefined) {
      this.topic = sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
    } else if (props.alarmEmail !== undefined) {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: `dssss ${Stack.of(this).stackName} alarms`, enforceSSL: true });
      topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
      this.topic = topic;
    }
    if (this.topic !== undefined) {
      const action = new actions.SnsAction(this.topic);
      for (const a of Object.values(this.alarms)) {
        a.addAlarmAction(action);
        a.addOkAction(action);
      }
    }

    const graph = (title: string, left: cloudwatch.IMetric[], width = 12) => new cloudwatch.GraphWidget({ title, left, width, height: 6 });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `dssss-${Stack.of(this).stackName}`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      graph('API: requests, 4xx, 5xx', [api.metricCount({ period: fiveMinutes }), api.metricClientError({ period: fiveMinutes }), api.metricServerError({ period: fiveMinutes })]),
      graph('API: latency p50, p99 (ms)', [api.metricLatency({ statistic: 'p50', period: fiveMinutes }), api.metricLatency({ statistic: 'p99', period: fiveMinutes })]),
    );
    this.dashboard.addWidgets(
      graph('Requests by operation and outcome; 5xx', [byDimension(METRIC.requests, [DIMENSION.operation, DIMENSION.outcome], 'requests'), own(METRIC.serverErrors)]),
      graph('Logins by method and outcome; refused', [byDimension(METRIC.logins, [DIMENSION.method, DIMENSION.outcome], 'logins'), own(METRIC.loginFailures)]),
    );
    this.dashboard.addWidgets(
      graph('Refusals (401, 403) by code and by reason', [byDimension(METRIC.refusals, [DIMENSION.code], 'by code'), byDimension(METRIC.refusals, [DIMENSION.reason], 'by reason')]),
      graph('Dependency throttles and failures by service; change events not published', [
        byDimension(METRIC.dependencyThrottles, [DIMENSION.service], 'throttles'),
        byDimension(METRIC.dependencyFailures, [DIMENSION.service], 'failures'),
        own(METRIC.eventPublishFailures),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Read cache: hits, misses', [own(METRIC.cacheHits), own(METRIC.cacheMisses)]),
      graph('Time in the app p50, p99 (ms)', [own(METRIC.latency, 'p50'), own(METRIC.latency, 'p99')]),
    );
    this.dashboard.addWidgets(
      graph('Function: invocations, errors, throttles', [
        fn.metricInvocations({ period: fiveMinutes }),
        fn.metricErrors({ period: fiveMinutes }),
        fn.metricThrottles({ period: fiveMinutes }),
      ]),
      graph('Function: concurrency (max), duration p99 (ms)', [
        fn.metric('ConcurrentExecutions', { period: minute, statistic: 'Maximum' }),
        fn.metricDuration({ statistic: 'p99', period: fiveMinutes }),
      ]),
    );
  }
}
