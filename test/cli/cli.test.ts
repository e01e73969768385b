// The `dssss` command end to end against a local dssss over real HTTP, with EC2 instances
// (IMDSv2) and STS played by the shared AWS stand-in on loopback (test/cli/harness.ts): most
// commands in this process, and logins, put/get/ls, exec and dev as the bundle users install,
// in a child process.

import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm as remove, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEV_CA_FILE as CLI_DEV_CA_FILE } from '../../cli/commands/dev';
import { environmentName, isProtectedVariable } from '../../cli/commands/exec';
import { FileTokenStore } from '../../cli/token-store';
import { DEV_CA_FILE } from '../../lambda/adapters/dev-ca-files';
import { ACCOUNT, type Fixture } from '../helpers';
import type { FakeAws } from '../support/fake-aws';
import { listen, OTHER_ACCOUNT, startHarness, type CommandOptions, type Harness } from './harness';

let h: Harness;
let f: Fixture;
let url: string;
let home: string;
let fake: FakeAws;
const dssss = (args: string[], options?: CommandOptions) => h.dssss(args, options);
/** What the current instance's IMDS has been asked, `METHOD /latest/...`. */
const imdsLog = () => fake.imds.requestLog(h.instance.instanceId);

beforeAll(async () => {
  h = await startHarness();
  ({ f, url, home, fake } = h);
});

afterAll(() => h.close());

// Each test starts on a new instance of web with no role attached: its logins use the document.
beforeEach(() => h.launch('web'));

describe('dssss login', () => {
  it('on EC2 without an instance role: logs in with the identity document and caches the token in a 0600 file', async () => {
    const tokenFile = join(home, 'ec2', 'token.json');
    const run = await dssss(['login'], { tokenFile, bundle: true });
    expect(run).toMatchObject({ code: 0, stdout: '' });
    expect(run.stderr).toMatch(/logged in as role web \(ec2\)/);
    expect(imdsLog()).toContain('GET /latest/dynamic/instance-identity/rsa2048');
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const cache = JSON.parse(await readFile(tokenFile, 'utf8')) as { tokens: Record<string, { role: string; method: string }> };
    expect(Object.values(cache.tokens)).toMatchObject([{ role: 'web', method: 'ec2' }]);
  });

  it('elsewhere: signs GetCallerIdentity with the default credential chain and logs in through /v1/auth/iam', async () => {
    // An ECS task's session, say: STS checks the signature the server forwards.
    const task = fake.assumeRole('worker', 'task', OTHER_ACCOUNT);
    const from = fake.stsKeys.length;
    const run = await dssss(['login'], {
      tokenFile: join(home, 'iam.json'),
      env: { AWS_ACCESS_KEY_ID: task.accessKeyId, AWS_SECRET_ACCESS_KEY: task.secretAccessKey, AWS_SESSION_TOKEN: task.sessionToken! },
      bundle: true,
    });
    // A role of another allowed account is shown with its account.
    expect(run.stderr).toMatch(/logged in as role 123456789012:worker \(iam\)/);
    expect(run.code).toBe(0);
    expect(fake.stsKeys.slice(from)).toEqual([task.accessKeyId]);
  });

  it('binds EC2 logins to the nonce in DSSSS_NONCE_FILE; a copied document with another nonce is refused', async () => {
    const nonceFile = join(home, 'instance', 'nonce');
    const env = { DSSSS_NONCE_FILE: nonceFile };
    expect((await dssss(['login'], { tokenFile: join(home, 'n1.json'), env })).code).toBe(0);
    expect((await stat(nonceFile)).mode & 0o777).toBe(0o600);
    expect((await dssss(['login'], { tokenFile: join(home, 'n2.json'), env })).code).toBe(0);
    const thief = await dssss(['login'], { tokenFile: join(home, 'n3.json'), env: { DSSSS_NONCE_FILE: join(home, 'thief-nonce') } });
    expect(thief.code).toBe(3);
    expect(thief.stderr).toMatch(/nonce/);
  });

  it('gives each server its own nonce: what a hostile server receives does not replay to another (finding 9)', async () => {
    const nonceFile = join(home, 'instance-9', 'nonce');
    const env = { DSSSS_NONCE_FILE: nonceFile };
    expect((await dssss(['login'], { tokenFile: join(home, 'n9a.json'), env })).code).toBe(0);
    // A staging server, or a mistyped DSSSS_URL: it records what the instance sends.
    const seen: { document?: string; nonce?: string } = {};
    const hostile = await listen((req, res) => {
      seen.document = String(req.headers.authentication ?? '');
      seen.nonce = String(req.headers['x-dssss-nonce'] ?? '');
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":{"code":"unauthorized","message":"no"}}');
    });
    try {
      await dssss(['login', '--method', 'ec2'], { tokenFile: join(home, 'n9b.json'), env: { ...env, DSSSS_URL: hostile.url } });
    } finally {
      hostile.server.close();
    }
    expect(seen.document).toBe(h.instance.signedDocument());
    expect(seen.nonce).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    const replay = await fetch(`${url}/v1/auth`, { headers: { Authentication: seen.document!, 'X-Dssss-Nonce': seen.nonce! } });
    expect(replay.status).toBe(401);
    // The instance itself still logs in where it is bound.
    expect((await dssss(['login'], { tokenFile: join(home, 'n9c.json'), env })).code).toBe(0);
  });

  it('keeps using a nonce file an older client wrote (one nonce for every server), and says so', async () => {
    const nonceFile = join(home, 'legacy-nonce');
    await writeFile(nonceFile, 'legacy-nonce-0123456789abcdef\n', { mode: 0o600 });
    const first = await dssss(['login'], { tokenFile: join(home, 'l1.json'), env: { DSSSS_NONCE_FILE: nonceFile } });
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/warning: DSSSS_NONCE_FILE holds one nonce for every server/);
    const copied = await fetch(`${url}/v1/auth`, { headers: { Authentication: h.instance.signedDocument(), 'X-Dssss-Nonce': 'legacy-nonce-0123456789abcdef' } });
    expect(copied.status).toBe(200);
  });

  it('--method ec2 with IMDS disabled fails with exit 3 and says why', async () => {
    const run = await dssss(['login', '--method', 'ec2'], { tokenFile: join(home, 'x.json'), env: { AWS_EC2_METADATA_DISABLED: 'true' } });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/AWS_EC2_METADATA_DISABLED/);
  });

  it('reads AWS_EC2_METADATA_DISABLED as the SDK does: any value but false keeps IMDS out of it', async () => {
    for (const value of ['1', 'yes', 'TRUE']) {
      const run = await dssss(['login'], { tokenFile: join(home, `off-${value}.json`), env: { AWS_EC2_METADATA_DISABLED: value } });
      expect(run.code).toBe(3);
    }
    expect(imdsLog()).toEqual([]);
  });

  it('refuses a server URL that would send credentials in the clear or carries a password', async () => {
    for (const bad of ['http://dssss.example.com', 'https://user:pw@dssss.example.com', 'ftp://127.0.0.1']) {
      const run = await dssss(['ls'], { env: { DSSSS_URL: bad } });
      expect(run.code).toBe(2);
      expect(run.stderr).not.toContain('pw@');
    }
  });

  it('with IMDS disabled and no credentials, fails with exit 3', async () => {
    const run = await dssss(['login'], { tokenFile: join(home, 'y.json'), env: { AWS_EC2_METADATA_DISABLED: 'true' } });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/no AWS credentials/);
  });

  it('renews a token that has expired, and logs in again once when the server refuses a cached token', async () => {
    const tokenFile = join(home, 'renew.json');
    expect((await dssss(['login'], { tokenFile })).code).toBe(0);
    const cache = JSON.parse(await readFile(tokenFile, 'utf8')) as { tokens: Record<string, { token: string; expiresAt: string }> };
    const [key] = Object.keys(cache.tokens);
    cache.tokens[key!]!.expiresAt = new Date(Date.now() - 1000).toISOString();
    await writeFile(tokenFile, JSON.stringify(cache));
    let hits = imdsLog().length;
    expect((await dssss(['ls'], { tokenFile })).code).toBe(0);
    expect(imdsLog().length).toBeGreaterThan(hits);

    const fresh = JSON.parse(await readFile(tokenFile, 'utf8')) as typeof cache;
    fresh.tokens[key!]!.token = 'dssss.v1.forged';
    await writeFile(tokenFile, JSON.stringify(fresh));
    hits = imdsLog().length;
    expect((await dssss(['ls'], { tokenFile })).code).toBe(0);
    expect(imdsLog().length).toBeGreaterThan(hits);
  });
});

describe('the token cache keeps a token per server and identity', () => {
  /** Credentials of a role in another allowed account, as STS knows them; the stand-in's STS checks each signature. */
  const session = (role: string, name: string) => fake.assumeRole(role, name, OTHER_ACCOUNT);

  it('AWS_PROFILE=readonly logs in afresh as that profile rather than reuse the token another profile got; each keeps its own token in one file', async () => {
    const worker = session('worker', 'default-profile');
    const readonly = session('readonly', 'readonly-profile');
    const profiles = join(home, 'profiles');
    await mkdir(join(profiles, '.aws'), { recursive: true });
    const entry = (name: string, c: typeof worker) => `[${name}]\naws_access_key_id = ${c.accessKeyId}\naws_secret_access_key = ${c.secretAccessKey}\naws_session_token = ${c.sessionToken}\n`;
    await writeFile(join(profiles, '.aws', 'credentials'), `${entry('default', worker)}${entry('readonly', readonly)}`, { mode: 0o600 });
    await dssss(['put', 'web/for-worker', '--roles', `web,${OTHER_ACCOUNT}:worker`], { input: 'worker only' });

    const tokenFile = join(home, 'two-identities.json');
    const env = { HOME: profiles, AWS_EC2_METADATA_DISABLED: 'true' };
    const signed = () => fake.stsKeys.slice(from);
    const from = fake.stsKeys.length;
    expect(await dssss(['get', 'web/for-worker'], { tokenFile, env })).toMatchObject({ code: 0, stdout: 'worker only' });
    expect(signed()).toEqual([worker.accessKeyId]);
    // Another profile, the same server and token file: its own login, as readonly, which may not read it.
    const other = await dssss(['get', 'web/for-worker'], { tokenFile, env: { ...env, AWS_PROFILE: 'readonly' } });
    expect(other.code).toBe(5);
    expect(signed()).toEqual([worker.accessKeyId, readonly.accessKeyId]);
    // Each identity goes on with its own token: no login either time.
    expect(await dssss(['get', 'web/for-worker'], { tokenFile, env })).toMatchObject({ code: 0, stdout: 'worker only' });
    expect((await dssss(['get', 'web/for-worker'], { tokenFile, env: { ...env, AWS_PROFILE: 'readonly' } })).code).toBe(5);
    expect(signed()).toHaveLength(2);
    const cache = JSON.parse(await readFile(tokenFile, 'utf8')) as { tokens: Record<string, { role: string }> };
    expect(Object.values(cache.tokens).map((t) => t.role).sort()).toEqual([`${OTHER_ACCOUNT}:readonly`, `${OTHER_ACCOUNT}:worker`]);
    // The key names the server, and only a digest of the identity: no profile name, no key id.
    const keys = Object.keys(cache.tokens).join('\n');
    expect(Object.keys(cache.tokens).every((key) => key.startsWith(`${url} `))).toBe(true);
    for (const clue of ['readonly', 'default', worker.accessKeyId, readonly.accessKeyId, profiles]) expect(keys).not.toContain(clue);
  });

  it('static keys of two sessions, one token file: each its own token', async () => {
    const a = session('worker', 'keys-a');
    const b = session('readonly', 'keys-b');
    const tokenFile = join(home, 'two-keys.json');
    const keys = (c: typeof a) => ({ AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_SESSION_TOKEN: c.sessionToken!, AWS_EC2_METADATA_DISABLED: 'true' });
    const from = fake.stsKeys.length;
    for (const c of [a, b, a, b]) expect((await dssss(['ls'], { tokenFile, env: keys(c) })).code).toBe(0);
    expect(fake.stsKeys.slice(from)).toEqual([a.accessKeyId, b.accessKeyId]);
  });

  it('reads a token file of the earlier format (a token per URL) without error, and does not use its entry', async () => {
    const tokenFile = join(home, 'url-keyed.json');
    const planted = { token: 'dssss.v2.from-an-earlier-version', role: 'web', method: 'ec2', expiresAt: new Date(Date.now() + 600_000).toISOString(), obtainedAt: new Date().toISOString() };
    await writeFile(tokenFile, JSON.stringify({ version: 1, tokens: { [url]: planted } }), { mode: 0o600 });
    const before = imdsLog().length;
    const run = await dssss(['ls'], { tokenFile });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    // Logged in afresh (the document from IMDS) rather than send the URL-keyed token.
    expect(imdsLog().slice(before)).toContain('GET /latest/dynamic/instance-identity/rsa2048');
    const cache = JSON.parse(await readFile(tokenFile, 'utf8')) as { tokens: Record<string, unknown> };
    expect(Object.keys(cache.tokens)).toHaveLength(2);
    expect(cache.tokens[url]).toEqual(planted);
  });
});

describe('a nonce file or token file another user could have planted or read', () => {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  /** A seed (or a token file) as another user on the machine would plant it: they then know every server's nonce. */
  const seed = 'dssss-nonce-seed.v2:planted-by-someone-else-0123456789abcdef\n';

  it('refuses a nonce file others may read or write (exit 3, and what to do); once removed, the next login makes a fresh 0600 one', async () => {
    const nonceFile = join(home, 'shared-nonce-644');
    await writeFile(nonceFile, seed, { mode: 0o644 });
    await chmod(nonceFile, 0o644);
    const run = await dssss(['login'], { tokenFile: join(home, 'nonce-644.json'), env: { DSSSS_NONCE_FILE: nonceFile } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`DSSSS_NONCE_FILE ${nonceFile} is open to other users (mode 644)`);
    expect(run.stderr).toMatch(/remove it/);
    await remove(nonceFile);
    expect((await dssss(['login'], { tokenFile: join(home, 'nonce-644.json'), env: { DSSSS_NONCE_FILE: nonceFile } })).code).toBe(0);
    expect((await stat(nonceFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(nonceFile, 'utf8')).not.toBe(seed);
  });

  it('refuses a nonce file that is a symbolic link, even to a private file of its own', async () => {
    const target = join(home, 'nonce-target');
    await writeFile(target, seed, { mode: 0o600 });
    const nonceFile = join(home, 'nonce-link');
    await symlink(target, nonceFile);
    const run = await dssss(['login'], { tokenFile: join(home, 'nonce-link.json'), env: { DSSSS_NONCE_FILE: nonceFile } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`DSSSS_NONCE_FILE ${nonceFile} is a symbolic link`);
  });

  it.runIf(asRoot)('refuses a nonce file another user owns, mode 0600 or not', async () => {
    const nonceFile = join(home, 'nonce-theirs');
    await writeFile(nonceFile, seed, { mode: 0o600 });
    await chown(nonceFile, 65534, 65534);
    const run = await dssss(['login'], { tokenFile: join(home, 'nonce-theirs.json'), env: { DSSSS_NONCE_FILE: nonceFile } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`DSSSS_NONCE_FILE ${nonceFile} belongs to another user`);
  });

  it('refuses a token file others may read or write, a symbolic link, or (as root, simulated) one another user owns, rather than send the token planted in it', async () => {
    // A valid-looking cache, as another user would plant it: a token of their choosing for this server.
    const planted = JSON.stringify({ version: 1, tokens: { [url]: { token: 'dssss.v2.planted', role: 'web', method: 'ec2', expiresAt: new Date(Date.now() + 600_000).toISOString(), obtainedAt: new Date().toISOString() } } });
    const open = join(home, 'token-644.json');
    await writeFile(open, planted, { mode: 0o644 });
    await chmod(open, 0o644);
    let run = await dssss(['ls'], { tokenFile: open });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`the token file ${open} is open to other users (mode 644)`);
    expect(run.stderr).toMatch(/remove it/);
    // login, which only writes the file, refuses it too: it would carry the planted entries on.
    expect((await dssss(['login'], { tokenFile: open })).code).toBe(3);
    await remove(open);
    expect((await dssss(['ls'], { tokenFile: open })).code).toBe(0);
    expect((await stat(open)).mode & 0o777).toBe(0o600);

    const target = join(home, 'token-target.json');
    await writeFile(target, planted, { mode: 0o600 });
    const link = join(home, 'token-link.json');
    await symlink(target, link);
    run = await dssss(['ls'], { tokenFile: link });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`the token file ${link} is a symbolic link`);

    if (asRoot) {
      const theirs = join(home, 'token-theirs.json');
      await writeFile(theirs, planted, { mode: 0o600 });
      await chown(theirs, 65534, 65534);
      run = await dssss(['ls'], { tokenFile: theirs });
      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`the token file ${theirs} belongs to another user`);
    }
  });

  it('FileTokenStore refuses such a file with a DssssClientError (no_credentials), and reads a missing one as empty', async () => {
    const open = join(home, 'store-644.json');
    await writeFile(open, '{"version":1,"tokens":{}}', { mode: 0o644 });
    await chmod(open, 0o644);
    await expect(new FileTokenStore(open).get(url)).rejects.toMatchObject({ name: 'DssssClientError', code: 'no_credentials' });
    await expect(new FileTokenStore(join(home, 'store-missing.json')).get(url)).resolves.toBeUndefined();
  });
});

describe('dssss put, get, ls, exec, rm', () => {
  it('puts from stdin and from --value-file, gets the raw value, lists what the role may read (the bundle, as installed)', async () => {
    const bundle = true;
    const put = await dssss(['put', 'app/db-password', '--roles', 'web,worker'], { input: 'hunter2', bundle });
    expect(put).toMatchObject({ code: 0, stdout: '' });
    expect(put.stderr).toMatch(/stored app\/db-password version 1/);
    const file = join(home, 'cert.pem');
    await writeFile(file, 'line one\nline two\n');
    expect((await dssss(['put', 'app/tls/cert.pem', '--roles', 'web', '--value-file', file], { bundle })).code).toBe(0);

    expect(await dssss(['get', 'app/db-password'], { bundle })).toMatchObject({ code: 0, stdout: 'hunter2' });
    expect(await dssss(['get', 'app/tls/cert.pem'], { bundle })).toMatchObject({ code: 0, stdout: 'line one\nline two\n' });
    expect((await dssss(['ls', 'app/'], { bundle })).stdout).toBe('app/db-password\napp/tls/cert.pem\n');
  });

  it('exec runs the command with the secrets under the prefix as UPPER_SNAKE variables, and passes on its exit code', async () => {
    await dssss(['put', 'svc/api-key', '--roles', 'web'], { input: 'k-123' });
    await dssss(['put', 'svc/db/url', '--roles', 'web'], { input: 'postgres://db' });
    const run = await dssss(['exec', '--prefix', 'svc/', '--', 'node', '-e', 'console.log(process.env.API_KEY, process.env.DB_URL); process.exit(7)']);
    expect(run.stdout).toBe('k-123 postgres://db\n');
    expect(run.code).toBe(7);
    expect((await dssss(['exec', '--prefix', 'svc/', '--', 'no-such-command-dssss'])).code).toBe(127);
  });

  it('exec refuses names that would set loader, path or credential variables, or override the environment', async () => {
    for (const [name, variable] of [['hook/node-options', 'NODE_OPTIONS'], ['hook/path', 'PATH'], ['hook/ld.preload', 'LD_PRELOAD'], ['hook/home', 'HOME']]) {
      await dssss(['put', name!, '--roles', 'web'], { input: '--import=data:text/javascript,process.exit(66)' });
      const run = await dssss(['exec', '--prefix', 'hook/', '--', 'node', '-e', 'process.exit(0)']);
      expect(run.code, variable).toBe(1);
      expect(run.stderr).toContain(variable!);
      expect(run.stderr).not.toContain('--import');
      // As an admin on an instance of its own: the commands after it stay on web's.
      await dssss(['rm', name!], { tokenFile: join(home, 'admin-hook.json'), instance: await h.launch('dssssadmin', { current: false }) });
    }
    await dssss(['put', 'own/dssss-url', '--roles', 'web'], { input: 'http://elsewhere' });
    expect((await dssss(['exec', '--prefix', 'own', '--', 'true'])).code).toBe(1);
  });

  it('exec refuses the variables the red team planted (finding 5), and --only exports exactly the variables named', async () => {
    // Every variable the red team planted is refused (the list, checked directly), and one end to end.
    const planted = ['LESSOPEN', 'OPENSSL_CONF', 'GCONV_PATH', 'SSLKEYLOGFILE', 'CURL_HOME', 'PAGER', 'EDITOR', 'NPM_CONFIG_PREFIX', 'KUBECONFIG', 'DOCKER_HOST', 'HOSTALIASES', 'GLIBC_TUNABLES'];
    expect(planted.filter((variable) => !isProtectedVariable(variable))).toEqual([]);
    // The security review's gaps: options a JVM, make or Erlang reads, editors' and shells' init
    // files, locale and message-catalogue paths, and config or credential files by path.
    const review = [
      'JAVA_OPTS', 'CATALINA_OPTS', 'MAKEFILES', 'MAKEFLAGS', 'ERL_AFLAGS', 'ERL_ZFLAGS', 'ERL_LIBS', 'VIMINIT', 'EXINIT', 'MYVIMRC',
      'HGRCPATH', 'LOCPATH', 'NLSPATH', 'ZDOTDIR', 'INPUTRC', 'KRB5_CONFIG', 'PGPASSFILE', 'BOTO_CONFIG', 'GOOGLE_APPLICATION_CREDENTIALS',
    ];
    expect(review.filter((variable) => !isProtectedVariable(variable))).toEqual([]);
    // Their close relatives, found while at it.
    const relatives = [
      'CATALINA_BASE', 'JPDA_OPTS', 'SBT_OPTS', 'ES_JAVA_OPTS', 'JRE_HOME', 'MFLAGS', 'GNUMAKEFLAGS', 'ERL_FLAGS', 'ELIXIR_ERL_OPTIONS', 'MIX_EXS',
      'GVIMINIT', 'MYGVIMRC', 'VIMRUNTIME', 'EMACSLOADPATH', 'SUDO_EDITOR', 'SUDO_ASKPASS', 'HGEDITOR', 'SVN_EDITOR', 'LOCALE_ARCHIVE',
      'FPATH', 'BASH_LOADABLES_PATH', 'SCREENRC', 'KRB5CCNAME', 'KRB5_KTNAME', 'PGSERVICEFILE', 'PGSYSCONFDIR', 'PGSSLROOTCERT', 'PSQLRC',
      'MYSQL_HOME', 'MYSQL_TEST_LOGIN_FILE', 'LIBMYSQL_PLUGINS', 'BOTO_PATH', 'CLOUDSDK_CONFIG', 'GCE_METADATA_HOST', 'AZURE_CONFIG_DIR',
      'AZURE_FEDERATED_TOKEN_FILE', 'IDENTITY_ENDPOINT', 'MSI_ENDPOINT', 'NETRC', 'IPYTHONDIR', 'JUPYTER_CONFIG_DIR', 'IRBRC', 'DENO_DIR',
      'GUILE_LOAD_PATH', 'JULIA_LOAD_PATH', 'OCAMLPATH', 'ANSIBLE_CONFIG', 'PKG_CONFIG_PATH', 'CC', 'CXX', 'LDFLAGS', 'GNUTLS_SYSTEM_PRIORITY_FILE',
    ];
    expect(relatives.filter((variable) => !isProtectedVariable(variable))).toEqual([]);
    // What a secret is usually exported as stays allowed.
    const ordinary = ['DB_PASSWORD', 'API_KEY', 'GOOGLE_API_KEY', 'TLS_CERT_PEM', 'PGPASSWORD', 'PGHOST', 'MYSQL_PASSWORD', 'AZURE_CLIENT_SECRET', 'STRIPE_KEY', 'JWT_SECRET', 'VAULT_TOKEN'];
    expect(ordinary.filter(isProtectedVariable)).toEqual([]);
    await dssss(['put', 'plant/lessopen', '--roles', 'web'], { input: '|touch /tmp/dssss-pwned' });
    const run = await dssss(['exec', '--prefix', 'plant/', '--', 'true']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('LESSOPEN');
    await dssss(['put', 'only/db-password', '--roles', 'web'], { input: 'pw' });
    await dssss(['put', 'only/api-key', '--roles', 'web'], { input: 'key' });
    await dssss(['put', 'only/editor', '--roles', 'web'], { input: 'planted' });
    const print = 'console.log([process.env.DB_PASSWORD, process.env.API_KEY, process.env.EDITOR ?? "-"].join(" "))';
    const only = await dssss(['exec', '--prefix', 'only/', '--only', 'DB_PASSWORD', '--', 'node', '-e', print], { env: { EDITOR: 'vi' } });
    expect(only).toMatchObject({ code: 0, stdout: 'pw  vi\n' });
    const missing = await dssss(['exec', '--prefix', 'only/', '--only', 'DB_PASSWORD,TOKEN', '--', 'true']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain('TOKEN');
    expect((await dssss(['exec', '--prefix', 'only/', '--only', 'lower', '--', 'true'])).code).toBe(2);
  });

  it('exec takes the prefix as whole segments, and refuses a value with a NUL byte without printing it', async () => {
    await dssss(['put', 'pre/x', '--roles', 'web'], { input: 'one' });
    await dssss(['put', 'prefixed', '--roles', 'web'], { input: 'two' });
    const run = await dssss(['exec', '--prefix', 'pre', '--', 'node', '-e', 'console.log(Object.keys(process.env).filter(k => k === "X" || k === "FIXED").join())']);
    expect(run).toMatchObject({ code: 0, stdout: 'X\n' });
    await dssss(['put', 'nul/cert', '--roles', 'web'], { input: 'BEGIN-secret\0tail' });
    const nul = await dssss(['exec', '--prefix', 'nul/', '--', 'true']);
    expect(nul.code).toBe(1);
    expect(nul.stderr).not.toContain('BEGIN-secret');
  });

  it('uses exit codes a script can rely on', async () => {
    await dssss(['put', 'app/only-web', '--roles', 'web'], { input: 'x' });
    expect((await dssss(['get', 'app/missing'])).code).toBe(5);
    const rm = await dssss(['rm', 'app/only-web']);
    expect(rm.code).toBe(4);
    expect(rm.stderr).toMatch(/distinguished/);
    expect((await dssss(['get', 'a/../b'])).code).toBe(2);
    expect((await dssss(['put', 'app/x'], { input: 'v' })).code).toBe(2);
    expect((await dssss(['put', 'app/x', '--roles', 'web', '--value', 'in-argv'])).code).toBe(2);
    expect((await dssss(['frobnicate'])).code).toBe(2);
    expect((await dssss(['get', 'app/x'], { env: { DSSSS_URL: '' } })).code).toBe(2);
    expect((await dssss(['get', 'app/x'], { env: { DSSSS_URL: 'http://127.0.0.1:9' }, tokenFile: join(home, 'down.json') })).code).toBe(6);

    // A role outside the secret's roles: the not-found of a missing name (5); the secret never reaches stdout.
    await h.launch('billing');
    const other = await dssss(['get', 'app/only-web'], { tokenFile: join(home, 'billing.json') });
    expect(other).toMatchObject({ code: 5, stdout: '' });
  });

  it('rm deletes as a distinguished role', async () => {
    await dssss(['put', 'app/temp', '--roles', 'web'], { input: 'x' });
    const admin = { tokenFile: join(home, 'admin.json'), instance: await h.launch('dssssadmin', { current: false }) };
    expect((await dssss(['rm', 'app/temp'], admin)).code).toBe(0);
    expect((await dssss(['get', 'app/temp'])).code).toBe(5);
  });
});

describe('dssss history, get --version, revert, rm, restore, rm --purge, ls --deleted', () => {
  it('shows every version, reads an older one, and reverts to it as a new version', async () => {
    await dssss(['put', 'hist/db', '--roles', 'web'], { input: 'first' });
    await dssss(['put', 'hist/db', '--roles', 'web,worker'], { input: 'second' });
    const history = await dssss(['history', 'hist/db']);
    expect(history.code).toBe(0);
    const lines = history.stdout.trim().split('\n');
    expect(lines[0]).toBe('VERSION\tAT\tOPERATION\tBY\tROLES');
    expect(lines.slice(1).map((line) => line.split('\t')[0])).toEqual(['2', '1']);
    expect(history.stdout).not.toMatch(/first|second/);
    expect(await dssss(['get', 'hist/db', '--version', '1'])).toMatchObject({ code: 0, stdout: 'first' });
    expect((await dssss(['get', 'hist/db', '--version', 'x'])).code).toBe(2);

    const revert = await dssss(['revert', 'hist/db', '1']);
    expect(revert.code).toBe(0);
    expect(revert.stderr).toMatch(/as version 3/);
    expect(await dssss(['get', 'hist/db'])).toMatchObject({ code: 0, stdout: 'first' });
    // Version 1's roles came back with its value: worker, added in version 2, is gone again.
    await h.launch('worker');
    expect((await dssss(['get', 'hist/db'], { tokenFile: join(home, 'worker-hist.json') })).code).toBe(5);
  });

  it('rm keeps the versions, restore brings the secret back, rm --purge wants --yes off a terminal and then destroys it', async () => {
    await dssss(['put', 'life/key', '--roles', 'web'], { input: 'kept' });
    const admin = { tokenFile: join(home, 'admin-life.json'), instance: await h.launch('dssssadmin', { current: false }) };
    const rm = await dssss(['rm', 'life/key'], admin);
    expect(rm.code).toBe(0);
    expect(rm.stderr).toMatch(/versions are kept/);
    expect((await dssss(['get', 'life/key'])).code).toBe(5);
    expect((await dssss(['ls', 'life/', '--deleted'], admin)).stdout).toBe('life/key\n');
    expect((await dssss(['ls', 'life/', '--deleted'])).code).toBe(4);

    expect((await dssss(['restore', 'life/key'], admin)).code).toBe(0);
    expect(await dssss(['get', 'life/key'])).toMatchObject({ code: 0, stdout: 'kept' });

    const unconfirmed = await dssss(['rm', '--purge', 'life/key'], admin);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/--yes/);
    expect(await dssss(['get', 'life/key'])).toMatchObject({ code: 0, stdout: 'kept' });
    expect((await dssss(['rm', '--purge', '--yes', 'life/key'], admin)).code).toBe(0);
    expect((await dssss(['history', 'life/key'])).code).toBe(5);
  });

  it('admin rotates the seal key, shows the ring, and rewraps every record; other roles are refused', async () => {
    await dssss(['put', 'ring/a', '--roles', 'web'], { input: 'before rotation' });
    expect((await dssss(['admin', 'rotate-seal-key'])).code).toBe(4);
    const admin = { tokenFile: join(home, 'admin-ring.json'), instance: await h.launch('dssssadmin', { current: false }) };
    const rotate = await dssss(['admin', 'rotate-seal-key'], admin);
    expect(rotate.code).toBe(0);
    const id = /seal key ([0-9a-f]{16})/.exec(rotate.stderr)?.[1];
    const ring = JSON.parse((await dssss(['admin', 'seal-keys'], admin)).stdout) as { keys: { id: string; current?: boolean }[] };
    expect(ring.keys.find((k) => k.current)?.id).toBe(id);
    const rewrap = await dssss(['admin', 'rewrap', '--rate', '1000'], admin);
    expect(rewrap.code).toBe(0);
    expect(rewrap.stderr).toMatch(/re-sealed [1-9]\d*, already current \d+/);
    const again = await dssss(['admin', 'rewrap', '--rate', '1000'], admin);
    expect(again.stderr).toMatch(/re-sealed 0, already current [1-9]/);
    expect(await dssss(['get', 'ring/a'])).toMatchObject({ code: 0, stdout: 'before rotation' });
    expect((await dssss(['admin', 'frobnicate'], admin)).code).toBe(2);
  });

  it('admin backup writes a 0600 file of sealed records; restore-backup brings a purged secret back, and again changes nothing', async () => {
    for (const value of ['one', 'two']) await dssss(['put', 'bak/a', '--roles', 'web'], { input: value });
    const admin = { tokenFile: join(home, 'admin-backup.json'), instance: await h.launch('dssssadmin', { current: false }) };
    const file = join(home, 'backup.json');
    const backup = await dssss(['admin', 'backup', '--output', file], admin);
    expect(backup).toMatchObject({ code: 0, stdout: '' });
    expect(backup.stderr).toMatch(/backed up [1-9]\d* secrets \(\d+ records\) and [1-9] seal keys/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).not.toMatch(/"(one|two)"/);
    expect((await dssss(['rm', '--purge', '--yes', 'bak/a'], admin)).code).toBe(0);
    const restored = await dssss(['admin', 'restore-backup', file, '--rate', '1000'], admin);
    expect(restored.code).toBe(0);
    expect(restored.stderr).toMatch(/restored [1-9]\d*, unchanged \d+, conflict 0, failed 0/);
    await h.launch('web');
    expect(await dssss(['get', 'bak/a', '--version', '1'], { tokenFile: join(home, 'web-backup.json') })).toMatchObject({ code: 0, stdout: 'one' });
    expect(await dssss(['get', 'bak/a'], { tokenFile: join(home, 'web-backup.json') })).toMatchObject({ code: 0, stdout: 'two' });
    const again = await dssss(['admin', 'restore-backup', file, '--rate', '1000'], admin);
    expect(again.stderr).toMatch(/restored 0, unchanged [1-9]\d*, conflict 0, failed 0/);
    expect((await dssss(['admin', 'restore-backup', join(home, 'nope.json')], admin)).code).toBe(2);
  });
});

describe('dssss export and import', () => {
  it('exports what the caller may read to a 0600 file; import creates, updates and skips what is already current, so a run repeated after a partial one writes only the rest', async () => {
    const source = join(home, 'import.env');
    await writeFile(source, "# from chamber\nexport DB_PASSWORD='p@ss w#rd'\nAPI_KEY=k1\nMULTI=\"one\\ntwo\"\n");
    const first = await dssss(['import', source, '--roles', 'web', '--prefix', 'imp', '--rate', '1000'], { env: { DSSSS_URL: url } });
    expect(first.stderr).toMatch(/created 3, updated 0, unchanged 0, failed 0/);
    expect(await dssss(['get', 'imp/db-password'])).toMatchObject({ code: 0, stdout: 'p@ss w#rd' });
    expect(await dssss(['get', 'imp/multi'])).toMatchObject({ code: 0, stdout: 'one\ntwo' });

    await writeFile(source, "DB_PASSWORD='p@ss w#rd'\nAPI_KEY=k2\nMULTI=\"one\\ntwo\"\nNEW_ONE=n\n");
    const again = await dssss(['import', source, '--roles', 'web', '--prefix', 'imp/', '--rate', '1000']);
    expect(again).toMatchObject({ code: 0 });
    expect(again.stderr).toMatch(/created 1, updated 1, unchanged 2, failed 0/);
    const history = await dssss(['history', 'imp/db-password']);
    expect(history.stdout.trim().split('\n')).toHaveLength(2); // header + version 1: no new version for an unchanged value

    const out = join(home, 'export.json');
    expect((await dssss(['export', '--prefix', 'imp', '--output', out])).code).toBe(0);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ 'api-key': 'k2', 'db-password': 'p@ss w#rd', multi: 'one\ntwo', 'new-one': 'n' });
    const dotenv = await dssss(['export', '--prefix', 'imp/', '--format', 'dotenv']);
    expect(dotenv.stdout).toContain("DB_PASSWORD='p@ss w#rd'\n");
    // Round trip: importing the export changes nothing.
    await writeFile(join(home, 'round.env'), dotenv.stdout);
    expect((await dssss(['import', join(home, 'round.env'), '--roles', 'web', '--prefix', 'imp'])).stderr).toMatch(/unchanged 4, failed 0/);

    // Another role reads nothing of it, so it exports nothing.
    await h.launch('billing');
    expect(await dssss(['export', '--prefix', 'imp', '--format', 'json'], { tokenFile: join(home, 'billing-export.json') })).toMatchObject({ code: 0, stdout: '{}\n' });
  });

  it('refuses to import what its own role could not read back: a second run would write it all again', async () => {
    const source = join(home, 'others.env');
    await writeFile(source, 'TOKEN=t\n');
    const run = await dssss(['import', source, '--roles', 'billing', '--prefix', 'theirs', '--rate', '1000']);
    expect(run).toMatchObject({ code: 2, stderr: expect.stringMatching(/your role web is not in --roles.*add web to --roles/) });
    expect((await dssss(['ls', 'theirs/'])).stdout).toBe('');
  });

  it('counts a refused write as failed, goes on with the rest, and exits 1', async () => {
    const source = join(home, 'partly.json');
    await writeFile(source, JSON.stringify({ ok: 'v', 'bad/../name': 'v', also: 'w' }));
    const run = await dssss(['import', source, '--roles', 'web', '--prefix', 'part', '--rate', '1000']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/created 2, updated 0, unchanged 0, failed 1/);
    expect(run.stderr).not.toMatch(/"v"|: v\b/);
  });
});

describe('retries', () => {
  /** API Gateway in front of the server, whose first `failures` requests get `status`. */
  const flakyFront = (failures: number, status: number, headers: Record<string, string> = {}) =>
    h.front((hits) => (hits < failures ? { status, headers, body: '{"error":{"code":"throttled","message":"slow down"}}' } : undefined));

  it('waits out 429s and 503s (honouring Retry-After) within --retry-for, then answers', async () => {
    await dssss(['put', 'retry/x', '--roles', 'web'], { input: 'eventually' });
    const front = await flakyFront(3, 429, { 'Retry-After': '0' });
    try {
      const run = await dssss(['get', 'retry/x', '--retry-for', '20'], { env: { DSSSS_URL: front.url } });
      expect(run).toMatchObject({ code: 0, stdout: 'eventually' });
      expect(front.hits()).toBeGreaterThan(3);
    } finally {
      front.close();
    }
  });

  it('gives up with exit 6 once the budget is spent, and at once with --retry-for 0', async () => {
    const front = await flakyFront(1_000, 503);
    try {
      const once = await dssss(['ls', '--retry-for', '0'], { env: { DSSSS_URL: front.url }, tokenFile: join(home, 'flaky.json') });
      expect(once.code).toBe(6);
      expect(front.hits()).toBe(1);
      const budget = await dssss(['ls'], { env: { DSSSS_URL: front.url, DSSSS_RETRY_FOR: '1' }, tokenFile: join(home, 'flaky.json') });
      expect(budget.code).toBe(6);
      expect(front.hits()).toBeGreaterThan(2);
      expect((await dssss(['ls', '--retry-for', 'soon'])).code).toBe(2);
    } finally {
      front.close();
    }
  });

  it('retries a connection refused, and IMDS while it fails', async () => {
    const down = await dssss(['ls', '--retry-for', '1'], { env: { DSSSS_URL: 'http://127.0.0.1:9' }, tokenFile: join(home, 'down2.json') });
    expect(down.code).toBe(6);
    fake.imds.fault(h.instance.instanceId, { kind: 'error', status: 500, count: 2 });
    const from = imdsLog().length;
    const login = await dssss(['login', '--method', 'ec2', '--retry-for', '20'], { tokenFile: join(home, 'imds-flaky.json') });
    expect(login.code).toBe(0);
    const token = 'PUT /latest/api/token';
    expect(imdsLog().slice(from)).toEqual([token, token, token, 'GET /latest/dynamic/instance-identity/rsa2048']); // two 500s, then a session and the document
  });
});

describe('environmentName', () => {
  it.each([
    ['app/db-password', 'app/', 'DB_PASSWORD'],
    ['app/db-password', 'app', 'DB_PASSWORD'],
    ['app/tls/cert.pem', 'app/', 'TLS_CERT_PEM'],
    ['app/9lives', 'app/', '_9LIVES'],
    ['token', '', 'TOKEN'],
  ])('%s under %s is %s', (name, prefix, variable) => {
    expect(environmentName(name, prefix)).toBe(variable);
  });
});

describe('login on EC2 with an instance role (issue 17)', () => {
  it("logs in by IAM with the role's credentials from IMDSv2 (one STS call on the server, no document), with the nonce", async () => {
    const instance = await h.launch('web', { instanceRole: true });
    const nonceFile = join(home, 'role-instance', 'nonce');
    const from = fake.stsKeys.length;
    const run = await dssss(['login'], { tokenFile: join(home, 'role.json'), env: { DSSSS_NONCE_FILE: nonceFile }, bundle: true });
    expect(run.stderr).toMatch(/logged in as role web \(iam\)/);
    expect(run.code).toBe(0);
    expect(imdsLog()).toContain('GET /latest/meta-data/iam/security-credentials/');
    expect(imdsLog()).toContain('GET /latest/meta-data/iam/security-credentials/web');
    // Signed with the role's credentials from IMDS (STS checks the signature), not the client's own.
    expect(fake.stsKeys.slice(from)).toEqual([instance.credentials.accessKeyId]);
    // The nonce went with it: the instance is now bound, and a login with another nonce is refused.
    const thief = await dssss(['login'], { tokenFile: join(home, 'role-thief.json'), env: { DSSSS_NONCE_FILE: join(home, 'role-thief-nonce') } });
    expect(thief.code).toBe(3);
    expect((await dssss(['login'], { tokenFile: join(home, 'role2.json'), env: { DSSSS_NONCE_FILE: nonceFile } })).code).toBe(0);
  });

  it('logs in with the identity document when told to (--method ec2), role or not', async () => {
    await h.launch('web', { instanceRole: true });
    const run = await dssss(['login', '--method', 'ec2'], { tokenFile: join(home, 'forced-ec2.json') });
    expect(run.stderr).toMatch(/\(ec2\)/);
    expect(run.code).toBe(0);
  });

  it('reads IMDS at the endpoint its environment names, path and all', async () => {
    // The stand-in mounts each instance's IMDS at <url>/<instance id>, as a fleet simulation does.
    const mounted = await h.launch('worker');
    const endpoint = `${h.aws.imdsUrl(mounted.instanceId)}/`;
    expect(new URL(endpoint).pathname).toBe(`/${mounted.instanceId}/`);
    const run = await dssss(['login'], { tokenFile: join(home, 'mounted.json'), env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint } });
    expect(run.stderr).toMatch(/logged in as role worker \(ec2\)/);
    expect(imdsLog().length).toBeGreaterThan(0);
    expect(imdsLog().every((r) => r.split(' ')[1]!.startsWith('/latest/'))).toBe(true); // under the path, and no doubled slash
  });

  it('takes a 4xx from IMDS as final (exit 3 at once, whatever the budget), and retries a 5xx', async () => {
    const document = '/latest/dynamic/instance-identity/rsa2048';
    // Refused once: a retry would get it, so only a client that takes the 403 as final fails.
    fake.imds.fault(h.instance.instanceId, { kind: 'error', status: 403, count: 1, path: document });
    const run = await dssss(['login', '--method', 'ec2', '--retry-for', '30'], { tokenFile: join(home, 'refused.json') });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^dssss: could not read the instance identity document from IMDS \(status 403; .*hop limit.*\) \(imds_unavailable\)\n$/);
    expect(imdsLog()).toEqual(['PUT /latest/api/token', `GET ${document}`]); // a session token, one refused read: no retry

    const instance = await h.launch('web', { instanceRole: true });
    fake.imds.fault(instance.instanceId, { kind: 'error', status: 500, count: 3 });
    const flaky = await dssss(['login', '--retry-for', '20'], { tokenFile: join(home, 'role-flaky.json') });
    expect(flaky.stderr).toMatch(/\(iam\)/);
    expect(imdsLog().length).toBeGreaterThan(3); // past the three 500s
  });
});

describe('everyday commands', () => {
  it('ls -l shows version, updated, writer and roles of each name', async () => {
    await dssss(['put', 'long/a', '--roles', 'web,worker'], { input: 'x' });
    await dssss(['put', 'long/a', '--roles', 'web,worker'], { input: 'y' });
    const run = await dssss(['ls', '-l', 'long']);
    expect(run.code).toBe(0);
    const [header, row, ...rest] = run.stdout.split('\n');
    expect(header).toBe('NAME\tVERSION\tUPDATED\tBY\tROLES');
    expect(row).toMatch(/^long\/a\t2\t\d{4}-\d\d-\d\dT[^\t]+\tweb\/i-[0-9a-f]+\tweb,worker$/);
    expect(rest).toEqual(['']);
    expect(run.stdout).not.toMatch(/\by\b/);
  });

  it('--version, help, help COMMAND; an unknown command or option is one line and exit 2', async () => {
    expect((await dssss(['--version'])).stdout).toMatch(/^dssss \d+\.\d+\.\d+\n$/);
    const help = await dssss(['help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const name of ['login', 'get', 'put', 'ls', 'exec', 'dev', 'admin']) expect(help.stdout).toMatch(new RegExp(`\\n  ${name} +\\S`));
    const get = await dssss(['help', 'get']);
    expect(get.stdout).toMatch(/^usage: dssss get NAME/);
    expect(get.stdout).toContain('--watch');
    expect((await dssss(['exec', '--help'])).stdout).toMatch(/^usage: dssss exec/);
    for (const [args, line] of [
      [['frobnicate'], /^dssss: unknown command "frobnicate": dssss help lists them\n$/],
      [['help', 'frobnicate'], /^dssss: unknown command "frobnicate"/],
      [['dev', 'identity', '--rol', 'web'], /^dssss: dev identity: unknown option --rol \(see dssss help dev\)\n$/],
      [['get', 'a', '--verison', '2'], /^dssss: get: unknown option --verison \(see dssss help get\)\n$/],
      [['get', 'a', '--version'], /^dssss: get: --version needs a value/],
      [['get'], /^dssss: get: missing argument/],
      [['ls', 'a', 'b'], /^dssss: ls: unexpected argument "b"/],
    ] as const) {
      const run = await dssss([...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(line);
    }
  });
});

describe('the client against a local server: dev login, login --document, the data dir', () => {
  it('dev login logs in as a fake instance of the role (no IMDS), and later commands use its token', async () => {
    const tokenFile = join(home, 'dev-login.json');
    const env = { DSSSS_DATA_DIR: f.dir, AWS_EC2_METADATA_DISABLED: 'true' };
    const login = await dssss(['dev', 'login', '--role', 'worker', '--account', ACCOUNT], { tokenFile, env });
    expect(login.stderr).toMatch(/logged in as role worker \(a fake instance/);
    expect(login.code).toBe(0);
    expect(await dssss(['put', 'devlogin/x', '--roles', 'worker'], { tokenFile, env, input: 'from a laptop' })).toMatchObject({ code: 0 });
    expect(await dssss(['get', 'devlogin/x'], { tokenFile, env })).toMatchObject({ code: 0, stdout: 'from a laptop' });
    const cache = JSON.parse(await readFile(tokenFile, 'utf8')) as { tokens: Record<string, { method: string; expiresAt: string }> };
    // Kept for the document's own key, and for this environment's: what the later commands used.
    expect(Object.values(cache.tokens).map((t) => t.method)).toEqual(['document', 'document']);
    // Such a token is not renewed (there is no document to renew it with): the command says to log in again.
    for (const token of Object.values(cache.tokens)) token.expiresAt = new Date(Date.now() - 1000).toISOString();
    await writeFile(tokenFile, JSON.stringify(cache));
    const expired = await dssss(['get', 'devlogin/x'], { tokenFile, env });
    expect(expired.code).toBe(3);
    expect(expired.stderr).toMatch(/log in again \(dssss dev login/);
    // An explicit login detects afresh (here: an instance, through the IMDS stand-in).
    expect((await dssss(['login'], { tokenFile })).stderr).toMatch(/\(ec2\)/);
  });

  it('login --document FILE logs in with that document', async () => {
    const file = join(home, 'document.txt');
    await writeFile(file, await f.identity('billing'));
    const run = await dssss(['login', '--document', file], { tokenFile: join(home, 'document.json'), env: { AWS_EC2_METADATA_DISABLED: 'true' } });
    expect(run.stderr).toMatch(/logged in as role billing \(document\)/);
    expect((await dssss(['login', '--document', join(home, 'missing.txt')])).code).toBe(2);
  });

  it('dev commands find the data dir from a subdirectory, and never create a second one', async () => {
    // The CLI looks for the server's development CA by the server's own file name.
    expect(CLI_DEV_CA_FILE).toBe(DEV_CA_FILE);
    const project = await mkdtemp(join(tmpdir(), 'dssss-project-'));
    await mkdir(join(project, '.dssss'), { mode: 0o700 });
    await writeFile(join(project, '.dssss', 'dev-ca.json'), await readFile(join(f.dir, 'dev-ca.json')), { mode: 0o600 });
    const deep = join(project, 'src', 'deep');
    await mkdir(deep, { recursive: true });
    const run = await dssss(['dev', 'identity', '--role', 'web'], { cwd: deep });
    expect(run.code).toBe(0);
    expect(run.stdout.trim().length).toBeGreaterThan(100);
    expect((await readdir(join(project, '.dssss', 'instances'))).length).toBe(1);
    await expect(stat(join(deep, '.dssss'))).rejects.toThrow();

    const elsewhere = await mkdtemp(join(tmpdir(), 'dssss-nowhere-'));
    const lost = await dssss(['dev', 'identity', '--role', 'web'], { cwd: elsewhere });
    expect(lost.code).toBe(2);
    expect(lost.stderr).toMatch(/no local server data dir .*npm start.*DSSSS_DATA_DIR/);
    await expect(stat(join(elsewhere, '.dssss'))).rejects.toThrow();
    const wrongDir = await dssss(['dev', 'identity', '--role', 'web'], { cwd: elsewhere, env: { DSSSS_DATA_DIR: elsewhere } });
    expect(wrongDir.code).toBe(2);
    expect(wrongDir.stderr).toMatch(/holds no development CA/);
  });
});
