// One cold start, run by bench/cold-start.ts in a fresh `node`: import the bundled Lambda
// artifact, hand its handler one API Gateway event, print the timings as one JSON line.
// Plain JavaScript, so nothing but Node itself loads before the artifact.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [artifactUrl, eventFile] = process.argv.slice(2);
const event = JSON.parse(readFileSync(eventFile, 'utf8'));

// performance.now() counts from this process's start: `started` is Node's own boot time.
const started = performance.now();
const { handler } = await import(artifactUrl);
const imported = performance.now();
const result = await handler(event, { awsRequestId: 'bench', functionName: 'dssss-bench' });
const answered = performance.now();

process.stdout.write(
  `${JSON.stringify({
    bootMs: started,
    importMs: imported - started,
    firstRequestMs: answered - imported,
    statusCode: result.statusCode,
    body: result.body,
  })}\n`,
);
// SDK clients keep connections alive; the measurement is taken, so do not wait for them.
process.exit(0);
