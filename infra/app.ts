// The CDK app (`npx cdk synth|deploy`, see cdk.json): CDK context -> DssssStack props
// (infra/context.ts), with the cdk-nag AwsSolutions checks run at synth.
// Example: npx cdk deploy -c distinguishedRoles=secops -c writerRoles=ci,deployer

import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ContextError, stackFromContext } from './context';
import { DssssStack, StackSettingsError } from './stack';

const app = new App();
try {
  const { stackName, props } = stackFromContext((key) => app.node.tryGetContext(key), Object.keys(app.node.getAllContext()));
  // No `env`: the stack is environment-agnostic, so synth needs no credentials and no
  // lookups, and `cdk deploy` targets the account and region of the current credentials.
  new DssssStack(app, stackName, props);
} catch (err) {
  // A setting the deployer got wrong is one line naming it, not a stack trace.
  if (!(err instanceof ContextError || err instanceof StackSettingsError)) throw err;
  process.stderr.write(`dssss: ${err.message}\n`);
  process.exit(1);
}

// cdk-nag 3 is a policy-validation plugin: any finding not acknowledged in the stack fails
// synth. The acknowledgments and their reasons are written into the template's Metadata.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
