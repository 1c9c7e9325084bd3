#!/usr/bin/env node
// cloud-session-exporter entry point: parses flags, loads the config, then listens (or checks the config and exits).
import { createApp } from './core/app';
import { ConfigError, loadConfigFile } from './config/load';
import { JOB_TYPES } from './apis';
import { createLogger, type LogFormat, type LogLevel } from './util/log';
import { buildQuotaPlan, formatQuotaPlan } from './core/quota-plan';
import { BUILD } from './core/build-info';
import { parseDuration } from './config/duration';
import { redact } from './util/redact';
import { checkWebConfig, WebConfigError } from './web/web-config';

const DEFAULT_LISTEN_ADDRESS = ':10780';
/** SIGTERM exits within the grace period plus one second, whatever the network does. */
const HARD_EXIT_AFTER_GRACE_MS = 950;

const FLAGS = {
  'config.file': { default: 'cloud-session-exporter.yml', help: 'Configuration file (YAML).' },
  'config.check': { default: false, help: 'Validate the configuration (and the files it names), print the quota plan, and exit.' },
  'config.allow-no-jobs': { default: false, help: 'Accept a configuration without jobs (otherwise an error).' },
  'web.listen-address': { default: DEFAULT_LISTEN_ADDRESS, help: 'Address to listen on for the web interface and telemetry.' },
  'web.telemetry-path': { default: '/metrics', help: 'Path under which to expose metrics.' },
  'web.config.file': {
    default: '',
    help: 'Web configuration file (exporter-toolkit format) for TLS, client certificates, basic auth, headers and rate limit on every endpoint; re-read when it changes.',
  },
  'web.config.check': { default: false, help: 'Validate --web.config.file (and the files it names), print what it sets up, and exit. --config.check checks it too.' },
  'web.enable-lifecycle': { default: true, help: 'Serve POST /-/reload (on by default; --no-web.enable-lifecycle refuses it with 403). SIGHUP reloads either way.' },
  'web.shutdown-grace-period': { default: '15s', help: 'On SIGTERM, how long in-flight polls may run before they are aborted.' },
  'log.level': { default: 'info', help: 'Only log messages with the given severity or above: debug, info, warn, error.' },
  'log.format': { default: 'logfmt', help: 'Output format of log messages: logfmt or json.' },
  version: { default: false, help: 'Show the version and exit.' },
  help: { default: false, help: 'Show this help and exit.' },
} as const;

type FlagName = keyof typeof FLAGS;
export type Flags = { [K in FlagName]: (typeof FLAGS)[K]['default'] extends boolean ? boolean : string };

export function parseFlags(argv: string[]): Flags {
  const out: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(FLAGS)) out[k] = v.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--?([a-z][a-z0-9.-]*)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument "${arg}" (flags look like --config.file=FILE)`);
    let name = m[1];
    let value: string | undefined = m[2];
    const negated = name.startsWith('no-') && name.slice(3) in FLAGS;
    if (negated) name = name.slice(3);
    if (!(name in FLAGS)) throw new Error(`unknown flag --${name} (see --help)`);
    const def = FLAGS[name as FlagName].default;
    if (typeof def === 'boolean') {
      if (value !== undefined && !['true', 'false'].includes(value)) throw new Error(`flag --${name} takes true or false, got "${value}"`);
      out[name] = negated ? false : value === undefined ? true : value === 'true';
    } else {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new Error(`flag --${name} needs a value`);
      }
      out[name] = value;
    }
  }
  const level = out['log.level'] as string;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new Error(`--log.level must be debug, info, warn or error, got "${level}"`);
  const format = out['log.format'] as string;
  if (!['logfmt', 'json'].includes(format)) throw new Error(`--log.format must be logfmt or json, got "${format}"`);
  const telemetryPath = out['web.telemetry-path'] as string;
  if (!/^\/[^?#\s]*$/.test(telemetryPath) || telemetryPath.startsWith('/-/') || telemetryPath === '/') {
    throw new Error(`--web.telemetry-path must be a path starting with "/" (not "/" or "/-/..."), got "${telemetryPath}"`);
  }
  return out as Flags;
}

function usage(): string {
  const spelling = (k: string, d: string | boolean) => (d === true ? `--[no-]${k}` : d === false ? `--${k}` : `--${k}=${d || 'FILE'}`);
  const lines = Object.entries(FLAGS).map(([k, v]) => `  ${spelling(k, v.default)}\n      ${v.help}`);
  return `usage: cloud-session-exporter [flags]\n\nFlags:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`cloud-session-exporter: ${(err as Error).message}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(usage());
    return 0;
  }
  if (flags.version) {
    process.stdout.write(`cloud-session-exporter ${BUILD.version} (revision ${BUILD.revision}, node ${process.version})\n`);
    return 0;
  }
  const logger = createLogger({ level: flags['log.level'] as LogLevel, format: flags['log.format'] as LogFormat });
  const file = flags['config.file'];
  const allowNoJobs = flags['config.allow-no-jobs'];
  const load = () => loadConfigFile(file, { jobTypes: JOB_TYPES, allowNoJobs });

  const webConfigFile = flags['web.config.file'] || undefined;
  if (flags['web.config.check'] && !webConfigFile) {
    process.stderr.write('cloud-session-exporter: --web.config.check needs --web.config.file=FILE\n');
    return 2;
  }
  // Both checks print what is valid on stdout and every problem on stderr; the exit code is 1 if either fails.
  if (flags['config.check'] || flags['web.config.check']) {
    let ok = true;
    if (flags['config.check']) ok = checkConfig(file, allowNoJobs);
    if (flags['config.check'] && webConfigFile && ok) process.stdout.write('\n');
    if (webConfigFile) ok = checkWebConfigFile(webConfigFile) && ok;
    return ok ? 0 : 1;
  }

  let graceMs: number;
  try {
    graceMs = parseDuration(flags['web.shutdown-grace-period']);
  } catch (err) {
    process.stderr.write(`cloud-session-exporter: --web.shutdown-grace-period: ${(err as Error).message}\n`);
    return 2;
  }

  let config;
  try {
    config = load();
  } catch (err) {
    // Once, on stderr, as --config.check prints it: a log line would only repeat it.
    process.stderr.write(`cloud-session-exporter: cannot start: ${redact((err as Error).message)}\n`);
    return 1;
  }
  const app = createApp(config, {
    jobTypes: JOB_TYPES,
    logger,
    loadConfig: load,
    telemetryPath: flags['web.telemetry-path'],
    webConfigFile,
    lifecycle: flags['web.enable-lifecycle'],
  });
  let address;
  try {
    address = await app.listen(flags['web.listen-address']);
  } catch (err) {
    // Like a bad config: every problem once on stderr, as --web.config.check prints them (the toolkit does not serve either).
    if (err instanceof WebConfigError) {
      process.stderr.write(`cloud-session-exporter: cannot start: ${err.message}\n`);
      return 1;
    }
    logger.error({ err, address: flags['web.listen-address'] }, 'cannot listen');
    return 1;
  }
  logger.info(
    {
      address: `${address.address}:${address.port}`,
      telemetry_path: flags['web.telemetry-path'],
      web_config_file: webConfigFile,
      lifecycle: flags['web.enable-lifecycle'],
      version: BUILD.version,
      jobs: config.jobs.length,
    },
    'listening',
  );
  app.start();

  process.on('SIGHUP', () => {
    logger.info('SIGHUP received, reloading the configuration');
    void app.reload();
  });
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled promise rejection (kept running)'));

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, grace_ms: graceMs }, 'shutting down');
      // app.stop() is bounded (grace + under a second); this is the promise kept whatever it meets.
      setTimeout(() => {
        logger.warn('shutdown did not complete within the grace period plus 950 ms; exiting anyway');
        resolve(0);
      }, graceMs + HARD_EXIT_AFTER_GRACE_MS).unref();
      app.stop(graceMs).then(
        () => resolve(0),
        (err) => {
          logger.error({ err }, 'error during shutdown');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

/** --config.check: the config and the files it names, then the quota plan on stdout; or every problem on stderr. */
function checkConfig(file: string, allowNoJobs: boolean): boolean {
  try {
    const cfg = loadConfigFile(file, { jobTypes: JOB_TYPES, allowNoJobs, checkFiles: true });
    const plan = buildQuotaPlan(cfg, JOB_TYPES);
    process.stdout.write(`${file}: configuration is valid (${cfg.accounts.length} account(s), ${cfg.jobs.length} job(s))\n`);
    for (const note of cfg.checkNotes) process.stdout.write(`  ${redact(note)}\n`);
    process.stdout.write(`\n${formatQuotaPlan(plan)}`);
    return true;
  } catch (err) {
    process.stderr.write(`${redact(err instanceof ConfigError ? err.message : `${file}: ${(err as Error).message}`)}\n`);
    return false;
  }
}

/** --web.config.check, and --config.check with --web.config.file: what the file sets up on stdout, or every problem on stderr. */
function checkWebConfigFile(file: string): boolean {
  try {
    process.stdout.write(`${checkWebConfig(file)}\n`);
    return true;
  } catch (err) {
    process.stderr.write(`${err instanceof WebConfigError ? err.message : `${file}: ${(err as Error).message}`}\n`);
    return false;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
