// `dssss exec --prefix P [--only A,B] [--watch ...] -- CMD ARGS...`: run CMD with the secrets
// under P as environment variables; with --watch, keep it running and restart it (or signal
// it) when they change.

import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { clientFor, COMMON, intervalSeconds, parseOptions, type Command, type Io } from '../args';
import { segmentPrefix, type Secret } from '../client';
import { CliError, EXIT } from '../errors';
import { parseSignal } from './get';

const DEFAULT_INTERVAL_SECONDS = 300;
const DEFAULT_GRACE_SECONDS = 10;

export const exec: Command = {
  name: 'exec',
  usage: 'dssss exec --prefix P [--only A,B] [--watch [--interval S] [--on-change restart|signal:NAME] [--grace S]] -- CMD ARGS...',
  summary: 'run CMD with the secrets under P as environment variables; --watch restarts or signals it when they change',
  details: `One bulk read (100 names a request); each secret under P you may read becomes a variable: the rest of its
name in UPPER_SNAKE (app/db-password is DB_PASSWORD). Refuses to set a variable the environment already has, or one
that steers what runs (PATH, NODE_*, LD_*, *_OPTS, MAKEFLAGS, init files, credential paths, AWS_*, DSSSS_*, proxies, ...); --only A,B exports exactly those (exit 5 if
one is missing). Exits with CMD's status (127 when it cannot be found).
--watch: re-read every --interval seconds (default ${DEFAULT_INTERVAL_SECONDS}, each wait 80-100% of it). On a change,
  restart (default): SIGTERM, up to --grace seconds (default ${DEFAULT_GRACE_SECONDS}), SIGKILL, then CMD again with the new
  environment; signal:NAME: send CMD that signal (e.g. signal:SIGHUP). A failed re-read keeps CMD running and is retried
  at the next interval; a change that would set a refused variable is reported and not applied. When CMD exits by
  itself, exec exits with its status.`,
  async run(args, io) {
    const dash = args.indexOf('--');
    if (dash < 0 || dash === args.length - 1) throw new CliError(EXIT.usage, 'exec: give the command after -- (see dssss help exec)');
    const { values } = parseOptions(
      'exec',
      args.slice(0, dash),
      {
        ...COMMON,
        prefix: { type: 'string' },
        only: { type: 'string' },
        watch: { type: 'boolean' },
        interval: { type: 'string' },
        'on-change': { type: 'string' },
        grace: { type: 'string' },
      },
      [0, 0],
    );
    // --only: the variables the command expects, and nothing else (an allow-list).
    const only = typeof values.only === 'string' ? new Set(values.only.split(',').map((v) => v.trim()).filter(Boolean)) : undefined;
    if (only !== undefined && (only.size === 0 || [...only].some((v) => !/^[A-Z_][A-Z0-9_]*$/.test(v)))) {
      throw new CliError(EXIT.usage, '--only: variable names (A-Z, 0-9, _), comma-separated');
    }
    const watch = values.watch === true;
    if (!watch && (values.interval !== undefined || values['on-change'] !== undefined || values.grace !== undefined)) {
      throw new CliError(EXIT.usage, '--interval, --on-change and --grace go with --watch');
    }
    const onChange = parseOnChange(values['on-change'] as string | undefined);
    const interval = intervalSeconds(values.interval, DEFAULT_INTERVAL_SECONDS);
    const grace = graceSeconds(values.grace);
    // Whole segments: --prefix billing must not pick up billingpath.
    const prefix = segmentPrefix((values.prefix as string | undefined) ?? '');
    const [command, ...commandArgs] = args.slice(dash + 1) as [string, ...string[]];
    const client = clientFor(values, io);

    const secrets = await client.getAll(prefix);
    const env = environmentFor(secrets, prefix, only, io.env);
    const child = new Child(command, commandArgs, io);
    child.start(env);
    if (!watch) return child.exited;

    const controller = new AbortController();
    let current = env;
    const watching = client
      .watch(prefix, {
        intervalMs: interval * 1000,
        initial: secrets,
        signal: controller.signal,
        onError: (err) => io.stderr.write(`dssss: re-reading ${prefix || 'the secrets'} failed: ${err.message} (${err.code}); ${command} keeps running; trying again in ${interval} s\n`),
        onChange: async (next) => {
          let nextEnv: Record<string, string | undefined>;
          try {
            nextEnv = environmentFor(next, prefix, only, io.env);
          } catch (err) {
            io.stderr.write(`dssss: the secrets under ${prefix || 'the root'} changed, but ${(err as Error).message}: not applied\n`);
            return;
          }
          if (sameEnvironment(current, nextEnv)) return;
          current = nextEnv;
          if (onChange === 'restart') {
            io.stderr.write(`dssss: the secrets under ${prefix || 'the root'} changed: restarting ${command}\n`);
            await child.restart(nextEnv, grace * 1000);
          } else {
            io.stderr.write(`dssss: the secrets under ${prefix || 'the root'} changed: sending ${onChange} to ${command}\n`);
            child.signal(onChange);
          }
        },
      })
      .catch((err: unknown) => io.stderr.write(`dssss: watching stopped: ${(err as Error).message}\n`));
    const status = await child.exited;
    controller.abort();
    void watching;
    return status;
  },
};

type OnChange = 'restart' | NodeJS.Signals;

function parseOnChange(given: string | undefined): OnChange {
  if (given === undefined || given === 'restart') return 'restart';
  if (given.startsWith('signal:')) return parseSignal(given.slice('signal:'.length));
  throw new CliError(EXIT.usage, '--on-change: restart or signal:NAME (e.g. signal:SIGHUP)');
}

function graceSeconds(given: unknown): number {
  if (given === undefined) return DEFAULT_GRACE_SECONDS;
  const seconds = Number(given);
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 3600) throw new CliError(EXIT.usage, '--grace: seconds, 0 to 3600');
  return seconds;
}

/** SIGINT or SIGTERM to this process, as an AbortSignal (and forwarded to a child, if one is given). */
export function stopSignal(_io: Io, forward?: (signal: NodeJS.Signals) => void): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const on = (signal: NodeJS.Signals) => {
    controller.abort();
    forward?.(signal);
  };
  process.on('SIGINT', on).on('SIGTERM', on);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', on).off('SIGTERM', on) };
}

/** The child process exec runs: started, restarted on change, signalled, and its own exit passed on. */
class Child {
  private process: ChildProcess | undefined;
  private restarting = false;
  private stopping = false;
  private resolveExit!: (code: number) => void;
  /** CMD's status when it exits by itself (or on SIGINT/SIGTERM forwarded to it). */
  readonly exited: Promise<number>;
  private readonly stop: { dispose: () => void };

  constructor(
    private readonly command: string,
    private readonly args: string[],
    private readonly io: Io,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    this.stop = stopSignal(io, (signal) => {
      this.stopping = true;
      this.process?.kill(signal);
    });
    void this.exited.then(() => this.stop.dispose());
  }

  start(env: Record<string, string | undefined>): void {
    const child = spawn(this.command, this.args, { stdio: 'inherit', env });
    this.process = child;
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.io.stderr.write(`dssss: cannot run ${this.command}: ${err.code ?? err.message}\n`);
      this.resolveExit(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => {
      if (this.restarting && this.process === child) return;
      if (this.process !== child) return;
      this.resolveExit(code ?? 128 + (signal ? (constants.signals[signal] ?? 15) : 15));
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.process?.kill(signal);
  }

  /** SIGTERM, up to `graceMs` for it to exit, SIGKILL; then the command again with `env`. */
  async restart(env: Record<string, string | undefined>, graceMs: number): Promise<void> {
    const old = this.process;
    if (old === undefined || this.stopping) return;
    this.restarting = true;
    try {
      if (old.exitCode === null && old.signalCode === null) {
        const gone = new Promise<void>((resolve) => old.once('exit', () => resolve()));
        old.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([gone.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
        clearTimeout(timer);
        if (timedOut) {
          this.io.stderr.write(`dssss: ${this.command} did not exit within ${graceMs / 1000} s of SIGTERM: SIGKILL\n`);
          old.kill('SIGKILL');
          await gone;
        }
      }
      if (this.stopping) {
        this.resolveExit(old.exitCode ?? 128 + (old.signalCode ? (constants.signals[old.signalCode] ?? 15) : 15));
        return;
      }
      this.start(env);
    } finally {
      this.restarting = false;
    }
  }
}

/**
 * The environment CMD gets: the caller's, plus each secret under `prefix` (or the `only` ones)
 * as a variable. Whoever may create a name under the prefix must not get to steer the
 * command: no overriding what the environment already holds, nothing that loads code or
 * moves PATH.
 */
export function environmentFor(
  secrets: ReadonlyMap<string, Secret>,
  prefix: string,
  only: ReadonlySet<string> | undefined,
  base: Readonly<Record<string, string | undefined>>,
): Record<string, string | undefined> {
  const variables = new Map<string, string>();
  for (const name of secrets.keys()) {
    const variable = environmentName(name, prefix);
    if (only !== undefined && !only.has(variable)) continue;
    if (variable in base || isProtectedVariable(variable)) {
      throw new CliError(EXIT.error, `${name} would set ${variable}, which dssss exec does not override`);
    }
    const earlier = variables.get(variable);
    if (earlier !== undefined) throw new CliError(EXIT.error, `${earlier} and ${name} both map to ${variable}`);
    variables.set(variable, name);
  }
  const missing = only === undefined ? [] : [...only].filter((v) => !variables.has(v));
  if (missing.length > 0) throw new CliError(EXIT.notFound, `no secret you may read under ${prefix || 'the root'} for ${missing.join(', ')}`);
  const env: Record<string, string | undefined> = { ...base };
  for (const [variable, name] of variables) {
    const value = secrets.get(name)!.value;
    if (value.includes('\0')) throw new CliError(EXIT.error, `${name} holds a NUL byte, which no environment variable can`);
    env[variable] = value;
  }
  return env;
}

function sameEnvironment(a: Record<string, string | undefined>, b: Record<string, string | undefined>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}

/**
 * Variables that decide what runs or how: loaders, interpreters' and tools' options, paths,
 * init files, pagers and editors, TLS and resolver configuration, credentials and config
 * files named by path, dssss itself. A deny-list
 * is never complete: `exec --only` is the allow-list, and the writer rules decide who can
 * create a name under a prefix at all.
 */
const PROTECTED_VARIABLES = new RegExp(
  '^(' +
    [
      // Shells: their init files, options and function paths.
      'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'IFS', 'ENV', 'BASH_.*', 'SHELLOPTS', 'BASHOPTS', 'CDPATH', 'FPATH', 'PS[0-9]', 'PROMPT_COMMAND',
      'ZDOTDIR', 'INPUTRC', 'SCREENRC', 'SYSSCREENRC',
      // The C library: locales, message catalogues, the resolver, the allocator.
      'TMPDIR', 'TZ', 'TZDIR', 'LANG', 'LANGUAGE', 'LC_.*', 'LOCPATH', 'NLSPATH', 'LOCALE_ARCHIVE', 'TERM', 'TERMINFO.*', 'XDG_.*',
      'HOSTALIASES', 'LOCALDOMAIN', 'RES_OPTIONS', 'RESOLV_.*', 'GCONV_PATH', 'GLIBC_TUNABLES', 'MALLOC_.*',
      // Interpreters and their package managers.
      'NODE_.*', 'NPM_CONFIG_.*', 'YARN_.*', 'DENO_.*', 'BUN_.*', 'LD_.*', 'DYLD_.*', 'PYTHON.*', 'PIP_.*', 'UV_.*', 'CONDA_.*', 'VIRTUAL_ENV', 'IPYTHONDIR', 'JUPYTER_.*',
      'PERL.*', 'RUBY.*', 'GEM_.*', 'BUNDLE_.*', 'IRBRC', 'PHPRC', 'PHP_INI_SCAN_DIR', 'LUA_.*', 'TCLLIBPATH', 'R_LIBS.*', 'R_PROFILE.*', 'R_ENVIRON.*',
      'ERL_.*', 'ELIXIR_.*', 'MIX_.*', 'GUILE_.*', 'JULIA_.*', 'OCAML.*', 'CAML_.*', 'GHC_.*', 'EMACS.*',
      'GO(FLAGS|PATH|ROOT|PROXY|PRIVATE|NOPROXY|NOSUMDB|NOSUMCHECK|INSECURE|TOOLCHAIN|ENV|BIN|CACHE|MODCACHE|EXPERIMENT|DEBUG|OS|ARCH|WORK|SUMDB|VCS|AUTH)', 'CGO_.*', 'CARGO_.*', 'RUST.*', 'DOTNET_.*', 'COMPLUS_.*', 'CORECLR_.*',
      // The JVM: its options under any tool's name (JAVA_OPTS, CATALINA_OPTS, SBT_OPTS, ...).
      'JAVA_HOME', 'JRE_HOME', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', '.*_OPTS', '.*_JAVA_OPTIONS', 'CLASSPATH', 'CATALINA_.*', 'JPDA_.*', 'GRADLE_.*',
      // Builds: make and the compilers it runs.
      'MAKE', 'MAKEFILES', 'MAKEFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'MFLAGS', 'GNUMAKEFLAGS', 'CC', 'CXX', 'CPP', 'LD', '(C|CXX|CPP|LD)FLAGS', 'PKG_CONFIG_.*',
      // Tools that run an editor, pager or helper, or read an init file: version control, editors, pagers.
      'GIT_.*', 'HG.*', 'SVN_.*', 'SSH_.*', 'GNUPGHOME', 'GPG_.*', 'EDITOR', 'VISUAL', '.*_EDITOR', '.*_ASKPASS', 'PAGER', '.*_PAGER', 'LESS.*', 'MANPAGER', 'MANOPT', 'BROWSER',
      'VIM.*', 'GVIMINIT', 'MYG?VIMRC', 'EXINIT', 'PSQLRC', 'PSQL_.*',
      // TLS, HTTP clients, proxies, credentials and config read from a path.
      'OPENSSL_.*', 'SSL_.*', 'SSLKEYLOGFILE', 'GNUTLS_.*', 'CURL_.*', 'WGETRC', 'NETRC', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS',
      'HTTPS?_PROXY', 'ALL_PROXY', 'NO_PROXY', 'FTP_PROXY', 'KRB5.*', 'PGPASSFILE', 'PGSERVICEFILE', 'PGSYSCONFDIR', 'PGSSL.*', 'PGGSS.*',
      'MYSQL_HOME', 'MYSQL_TEST_LOGIN_FILE', 'LIBMYSQL_.*', 'ANSIBLE_.*',
      'KUBECONFIG', 'DOCKER_.*', 'CONTAINER_HOST', 'HELM_.*', 'TF_.*',
      // Clouds: where their SDKs and CLIs find credentials, config and metadata endpoints.
      'AWS_.*', 'ECS_.*', 'BOTO_.*', 'GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_.*', 'GCE_METADATA_.*',
      'AZURE_CONFIG_DIR', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_CLIENT_CERTIFICATE_PATH', 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'MSI_ENDPOINT',
      'DSSSS_.*',
    ].join('|') +
    ')$',
);

export function isProtectedVariable(variable: string): boolean {
  return PROTECTED_VARIABLES.test(variable);
}

/** `app/db-password` under `app/` -> `DB_PASSWORD`; `app/tls/cert.pem` -> `TLS_CERT_PEM`. */
export function environmentName(name: string, prefix: string): string {
  const rest = name.slice(prefix.length).replace(/^\/+/, '');
  const snake = rest.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').toUpperCase();
  if (snake === '') throw new CliError(EXIT.error, `${name} gives no variable name under prefix ${prefix}`);
  return /^[0-9]/.test(snake) ? `_${snake}` : snake;
}
