#!/usr/bin/env bash
# Synthesize the stack (regional, and private behind a VPC endpoint with change events) into a temporary
# directory and lint every template with cfn-lint. Offline: the CDK app runs directly with
# cdk.json's context, so it needs no CDK CLI, no AWS credentials and no Docker.
# Fails on any cfn-lint error or warning; informational findings are not reported.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cfn-lint >/dev/null || { echo "cfn-lint not found (pip install cfn-lint)" >&2; exit 2; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# $1: output directory; $2: extra context as JSON. Path metadata as `cdk synth` writes it,
# which is also how cfn-lint recognizes a CDK template. Bundling is skipped: it changes only
# the asset hash, and the bundle is tested in test/infra.
synth() {
  CDK_OUTDIR="$1" CDK_CONTEXT_JSON="$(node -e '
    const { context = {} } = require("./cdk.json");
    const extra = JSON.parse(process.argv[1]);
    process.stdout.write(JSON.stringify({ ...context, "aws:cdk:enable-path-metadata": true, "aws:cdk:bundling-stacks": [], ...extra }));
  ' "$2")" npx --no-install tsx infra/app.ts
}

synth "$out/regional" '{"distinguishedRoles":"secops"}'
synth "$out/private" '{"distinguishedRoles":"none","stackName":"DssssPrivate","changeEvents":"true","endpointType":"private","vpcEndpointIds":"vpce-0123456789abcdef0"}'

shopt -s nullglob
templates=("$out"/*/*.template.json)
(( ${#templates[@]} == 2 )) || { echo "expected 2 templates, found ${#templates[@]} in $out" >&2; exit 1; }

# Exit status of cfn-lint is a bit mask: 2 errors, 4 warnings, 8 informational.
cfn-lint --format parseable -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} templates, no errors or warnings"
