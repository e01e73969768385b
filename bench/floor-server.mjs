// The floor of the aws suite: a bare node:http server that answers every request with one
// SSM GetParameter of DSSSS_FLOOR_PARAMETER, signed (SigV4) and sent as plainly as Node
// allows, and nothing else: no SDK, no dssss. Measured as the suite measures dssss, its
// "share" is what Node's HTTP, a signature and this machine cost before any server logic.
// Plain JavaScript, run by bench/aws-server.ts as a process of its own.

import { createServer, Agent, request } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

const endpoint = new URL(process.env.AWS_ENDPOINT_URL);
const body = JSON.stringify({ Name: process.env.DSSSS_FLOOR_PARAMETER });
const signer = new SignatureV4({
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  region: process.env.AWS_REGION,
  service: 'ssm',
  sha256: Hash.bind(null, 'sha256'),
});
const agent = new Agent({ keepAlive: true });

async function getParameter() {
  const signed = await signer.sign({
    method: 'POST',
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    port: Number(endpoint.port),
    path: '/',
    query: {},
    headers: { host: endpoint.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.GetParameter', 'content-length': String(Buffer.byteLength(body)) },
    body,
  });
  return new Promise((resolve, reject) => {
    const req = request({ host: endpoint.hostname, port: endpoint.port, method: 'POST', path: '/', headers: signed.headers, agent, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end(body);
  });
}

const server = createServer((req, res) => {
  req.resume();
  getParameter().then(
    ({ status, text }) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    },
    () => {
      res.writeHead(502);
      res.end();
    },
  );
});
server.listen(0, '127.0.0.1', () => console.log(`floor server listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
