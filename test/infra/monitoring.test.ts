// The stack's alarms, alarm topic and dashboard, read back from the synthesized template,
// and the CDK feature flags cdk.json sets.

import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ALARMS } from '../../infra/monitoring';
import { DssssStack, type DssssStackProps } from '../../infra/stack';
import { METRIC } from '../../lambda/metrics';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> };

function synth(props: Partial<DssssStackProps> = {}, id = 'Prod') {
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
  const stack = new DssssStack(app, id, { distinguishedRoles: ['secops'], ...props });
  return { stack, template: Template.fromStack(stack) };
}

type Alarm = { Properties: Record<string, any> };
const alarmsOf = (template: Template) => template.findResources('AWS::CloudWatch::Alarm') as Record<string, Alarm>;
const byName = (template: Template) => Object.fromEntries(Object.values(alarmsOf(template)).map((a) => [String(a.Properties.AlarmName).replace('dssss-Prod-', ''), a.Properties]));

describe('alarms', () => {
  const { stack, template } = synth();
  const alarms = byName(template);

  it('has one alarm per runbook entry, each naming its runbook, none firing on missing data', () => {
    expect(Object.keys(alarms).sort()).toEqual(Object.keys(ALARMS).sort());
    for (const [id, a] of Object.entries(alarms)) {
      expect(a.AlarmDescription).toContain(`"Operating dssss", ${id}`);
      expect(a.TreatMissingData).toBe('notBreaching');
      expect(a.ComparisonOperator).toBe('GreaterThanOrEqualToThreshold');
    }
  });

  it('watches the 5xx rate, function errors, throttles and concurrency, dependency throttling and refused logins', () => {
    expect(alarms.Api5xxRate).toMatchObject({ Threshold: 5, EvaluationPeriods: 5, DatapointsToAlarm: 3 });
    const expression = (alarms.Api5xxRate!.Metrics as { Expression?: string; MetricStat?: { Metric: { MetricName: string } } }[]);
    expect(expression.find((m) => m.Expression)?.Expression).toBe('100 * errors / MAX([requests, 1])');
    expect(expression.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : [])).sort()).toEqual(['5XXError', 'Count']);
    expect(alarms.FunctionErrors).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors', Threshold: 1 });
    expect(alarms.FunctionThrottles).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles', Threshold: 1 });
    expect(alarms.ConcurrencyNearLimit).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'ConcurrentExecutions', Statistic: 'Maximum', Threshold: 800 });
    // The quota is the account's: its total, not this function's share.
    expect(alarms.ConcurrencyNearLimit!.Dimensions).toBeUndefined();
    expect(alarms.DependencyThrottling).toMatchObject({
      Namespace: 'dssss',
      MetricName: METRIC.dependencyThrottles,
      Dimensions: [{ Name: 'Deployment', Value: 'Prod' }],
      Threshold: 10,
    });
    expect(alarms.RefusedLoginSpike).toMatchObject({ Namespace: 'dssss', MetricName: METRIC.loginFailures, Threshold: 100 });
    expect(alarms.InstanceStatesLost).toMatchObject({ Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
    // The metrics' Deployment is what the function is told to emit.
    const fn = Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.handler' } }))[0] as Alarm;
    expect(fn.Properties.Environment.Variables.DSSSS_DEPLOYMENT).toBe('Prod');
    expect(stack.monitoring.topic).toBeUndefined();
    for (const a of Object.values(alarms)) expect(a.AlarmActions).toBeUndefined();
  });

  it('puts the alarm at 80 % of the concurrency limit it is given', () => {
    expect(byName(synth({ concurrencyLimit: 3000 }).template).ConcurrencyNearLimit).toMatchObject({ Threshold: 2400 });
  });
});

describe('the alarm topic', () => {
  it('alarmEmail: a new topic that refuses non-TLS publishers, the address subscribed, every alarm and its recovery sent to it', () => {
    const { stack, template } = synth({ alarmEmail: 'oncall@example.com' });
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    const topic = stack.resolve((stack.monitoring.topic as { topicArn: string }).topicArn);
    for (const a of Object.values(byName(template))) {
      expect(a.AlarmActions).toEqual([topic]);
      expect(a.OKActions).toEqual([topic]);
    }
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  it('alarmTopicArn: no new topic, every alarm sent to the one given', () => {
    const arn = 'arn:aws:sns:eu-west-1:111122223333:pager';
    const { template } = synth({ alarmTopicArn: arn });
    template.resourceCountIs('AWS::SNS::Topic', 0);
    for (const a of Object.values(byName(template))) expect(a.AlarmActions).toEqual([arn]);
  });

  it('refuses both at once, a topic that is not an SNS ARN, and an address that is not one', () => {
    expect(() => synth({ alarmEmail: 'a@example.com', alarmTopicArn: 'arn:aws:sns:eu-west-1:111122223333:pager' })).toThrow(/give one of them/);
    expect(() => synth({ alarmTopicArn: 'pager' })).toThrow(/alarmTopicArn: an SNS topic ARN/);
    expect(() => synth({ alarmEmail: 'oncall' })).toThrow(/alarmEmail: an e-mail address/);
  });
});

describe('the dashboard', () => {
  it('is one dashboard that graphs every metric the function emits, and shows the alarms', () => {
    const { template } = synth();
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as Alarm[];
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]!.Properties.DashboardName).toBe('dssss-Prod');
    const body = JSON.stringify(dashboards[0]!.Properties.DashboardBody);
    for (const name of Object.values(METRIC)) {
      expect(body, name).toContain(name);
    }
    expect(body).toContain('alarm');
    for (const lambdaMetric of ['Invocations', 'Errors', 'Throttles', 'ConcurrentExecutions', 'Duration', '5XXError', 'Latency']) expect(body).toContain(lambdaMetric);
  });
});

describe('CDK feature flags', () => {
  it('sets every flag this aws-cdk-lib recommends, to the recommended value: a new flag after an upgrade fails here until it is decided', () => {
    for (const [flag, value] of Object.entries(CURRENTLY_RECOMMENDED_FLAGS)) expect(cdkJson.context[flag], flag).toEqual(value);
  });
});
