// The `cluster:` block: replicas that share one quota, poll each job once (leases) or split the inventories (shards),
// coordinated through Redis (src/cluster/). Absent: one process, local limiters, no Redis.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { firstCertificate, keyMismatch, pemCertificates, privateKey } from '../util/pem';
import { registerSecret } from '../util/redact';
import { splitHostPort } from '../util/host-port';
import { durationMs } from './duration';
import { identifier } from './identifier';

/** Where the Redis is, named without its password: redis[s]://host:port/db. */
export function redisUrlDisplay(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname && url.pathname !== '/' ? url.pathname : '/0'}`;
}

/** The URL, or a problem that does not quote it (it may hold a password). */
function parseRedisUrl(text: string): URL | { problem: string } {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return { problem: 'is not a URL such as redis://redis:6379/0' };
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return { problem: `has the scheme ${url.protocol.slice(0, -1)}: use redis:// or rediss:// (TLS)` };
  if (!url.hostname) return { problem: 'names no host' };
  if (url.pathname && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) return { problem: 'ends in a database number, e.g. /0, or nothing' };
  if (url.search || url.hash) return { problem: 'must be redis[s]://[user:password@]host[:port][/db] only, without a query' };
  return url;
}

const redisUrl = z.string().superRefine((v, ctx) => {
  const url = parseRedisUrl(v);
  if (!(url instanceof URL)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: url.problem });
});

/** host:port of a sentinel (IPv6 in brackets). */
export function sentinelAddress(v: string): { host: string; port: number } | undefined {
  const a = splitHostPort(v);
  return a && a.host !== '' && a.port >= 1 && a.port <= 65535 ? a : undefined;
}

const name = identifier();

const minLeaseMs = 1000;

export const clusterShape = {
  redis: z
    .object({
      url: redisUrl,
      /** Several exporter deployments can share one Redis: every key starts with `<key_prefix>:`. */
      key_prefix: name.default('cse'),
      /** The password in a file (its trailing newline ignored); wins over one in the URL. */
      password_file: z.string().min(1, 'must be a file path').optional(),
      /**
       * Redis Sentinel: the sentinels to ask for the current primary of the master group named by the URL's host
       * (redis://mymaster/0); a failover moves every replica to the new primary.
       */
      sentinels: z
        .array(z.string().refine((v) => sentinelAddress(v) !== undefined, (v) => ({ message: `"${v}" is not host:port, e.g. sentinel-0:26379` })))
        .min(1, 'must list at least one sentinel as host:port').optional(),
      /** The sentinels' own password (requirepass in sentinel.conf), in a file. */
      sentinel_password_file: z.string().min(1, 'must be a file path').optional(),
      /**
       * For rediss:// (Prometheus' tls_config keys): the CA to trust instead of the system's, a client certificate
       * (Redis asks for one unless `tls-auth-clients no`), the name to verify. Files are read at each connection, so a
       * renewed certificate is used from the next reconnect without a restart.
       */
      tls: z
        .object({
          ca_file: z.string().min(1, 'must be a file path').optional(),
          cert_file: z.string().min(1, 'must be a file path').optional(),
          key_file: z.string().min(1, 'must be a file path').optional(),
          server_name: z.string().min(1, 'must be a host name').optional(),
          insecure_skip_verify: z.boolean().default(false),
        })
        .strict()
        .optional(),
    })
    .strict(),
  /** This replica's name in Redis (leases, membership, shards): unique per replica. Default hostname-pid. */
  replica_id: name.max(128).optional(),
  /** A job's leader lease: failover within lease + one schedule interval. */
  lease: durationMs.refine((ms) => ms >= minLeaseMs, { message: `must be at least ${minLeaseMs / 1000}s` }).default('15s'),
  /** Static `{total_shards, shard}` (like kube-state-metrics) or `auto` (live replicas in Redis, rendezvous hashing). */
  sharding: z
    .union([
      z.literal('auto'),
      z
        .object({
          total_shards: z.number().int('must be a whole number').min(1).max(1000),
          shard: z.number().int('must be a whole number').min(0),
        })
        .strict(),
    ], { errorMap: () => ({ message: 'must be auto or {total_shards: N, shard: I}' }) })
    .optional(),
  /**
   * Whether the replicas reach the clouds from one source IP (one NAT gateway, one node): then a product's
   * per-source-IP ceiling (source_ip_qps) is one quota for all of them; false: each replica has its own.
   */
  shared_egress_ip: z.boolean().default(true),
};

type ParsedCluster = z.output<z.ZodObject<typeof clusterShape>>;

export interface ClusterConfig extends Omit<ParsedCluster, 'redis' | 'replica_id'> {
  /** As written, the secrets read at load and the TLS file paths made absolute (checked at load, read at each connect). */
  redis: ParsedCluster['redis'] & { password?: string; sentinelPassword?: string };
  replica_id: string;
}

export type RedisTlsConfig = NonNullable<ParsedCluster['redis']['tls']>;

/** Problems across keys, once each key is valid: a shard number within total_shards, TLS keys that fit the URL. */
export function clusterProblems(cfg: ParsedCluster): Array<[string[], string]> {
  const out: Array<[string[], string]> = [];
  const s = cfg.sharding;
  if (s && s !== 'auto' && s.shard >= s.total_shards) out.push([['sharding', 'shard'], `must be below total_shards (${s.total_shards}): shards are numbered from 0`]);
  // The URL is valid here (each key was checked on its own first).
  const url = parseRedisUrl(cfg.redis.url) as URL;
  const tlsUrl = url.protocol === 'rediss:';
  if (cfg.redis.sentinels && url.port) out.push([['redis', 'url'], "names with sentinels the master group as its host, without a port (redis://mymaster/0): the sentinels tell the primary's address"]);
  if (cfg.redis.sentinels && tlsUrl) out.push([['redis', 'sentinels'], 'work with redis:// URLs only: TLS through sentinels is not supported']);
  if (cfg.redis.sentinel_password_file !== undefined && !cfg.redis.sentinels) out.push([['redis', 'sentinel_password_file'], 'applies only with sentinels']);
  const t = cfg.redis.tls;
  if (t) {
    if (!tlsUrl) out.push([['redis', 'tls'], 'applies to TLS connections only: the URL must start with rediss://']);
    if (t.cert_file !== undefined && t.key_file === undefined) out.push([['redis', 'tls', 'cert_file'], "needs key_file: the client certificate's private key"]);
    if (t.key_file !== undefined && t.cert_file === undefined) out.push([['redis', 'tls', 'key_file'], 'needs cert_file: the client certificate it belongs to']);
  }
  return out;
}

/**
 * The TLS files as they will be used: each readable, the CA file holding certificates, the client certificate
 * matching its key (the same checks and words as the web config's, src/util/pem.ts). Paths made absolute.
 */
function resolveTls(t: RedisTlsConfig, dir: string, problem: (p: string[], msg: string) => void): RedisTlsConfig | undefined {
  const out: RedisTlsConfig = { ...t };
  let ok = true;
  const read = (key: 'ca_file' | 'cert_file' | 'key_file'): string | undefined => {
    if (t[key] === undefined) return undefined;
    const file = path.resolve(dir, t[key]);
    out[key] = file;
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      ok = false;
      problem(['redis', 'tls', key], `cannot read ${t[key]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  };
  const report = (key: string, why: string) => {
    ok = false;
    problem(['redis', 'tls', key], why);
  };
  const ca = read('ca_file');
  const certText = read('cert_file');
  const keyText = read('key_file');
  if (ca !== undefined && pemCertificates(ca).length === 0) report('ca_file', 'contains no PEM certificate');
  const cert = certText === undefined ? undefined : firstCertificate(certText);
  if (typeof cert === 'string') report('cert_file', cert);
  const key = keyText === undefined ? undefined : privateKey(keyText);
  if (typeof key === 'string') report('key_file', key);
  const mismatch = typeof cert === 'object' && typeof key === 'object' && keyMismatch(cert, key);
  if (mismatch) report('key_file', mismatch);
  return ok ? out : undefined;
}

/**
 * The block as the exporter uses it: the replica id defaulted, the password read from its file (a problem if it
 * cannot be) and every password registered as a secret, so it is masked wherever it could show.
 */
export function resolveCluster(cfg: ParsedCluster, dir: string, problem: (p: string[], msg: string) => void): ClusterConfig | undefined {
  const url = parseRedisUrl(cfg.redis.url);
  if (!(url instanceof URL)) return undefined;
  if (url.password) {
    registerSecret(url.password);
    registerSecret(decodeURIComponent(url.password));
  }
  const readPassword = (key: 'password_file' | 'sentinel_password_file'): string | undefined | null => {
    const file = cfg.redis[key];
    if (file === undefined) return undefined;
    try {
      const secret = fs.readFileSync(path.resolve(dir, file), 'utf8').replace(/\r?\n$/, '');
      registerSecret(secret);
      return secret;
    } catch (err) {
      problem(['redis', key], `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return null;
    }
  };
  const password = readPassword('password_file');
  const sentinelPassword = readPassword('sentinel_password_file');
  const tlsFiles = cfg.redis.tls && resolveTls(cfg.redis.tls, dir, problem);
  if (password === null || sentinelPassword === null || (cfg.redis.tls && !tlsFiles)) return undefined;
  return {
    ...cfg,
    redis: { ...cfg.redis, ...(password === undefined ? {} : { password }), ...(sentinelPassword === undefined ? {} : { sentinelPassword }), ...(tlsFiles ? { tls: tlsFiles } : {}) },
    replica_id: cfg.replica_id ?? `${os.hostname()}-${process.pid}`,
  };
}

/** What --config.check says about the block (never a password). */
export function describeCluster(cfg: ClusterConfig): string {
  const url = new URL(cfg.redis.url);
  const auth = cfg.redis.password !== undefined ? ', password from password_file' : url.password ? ', password from the URL' : '';
  const sharding = cfg.sharding === undefined ? 'no sharding: one leader per job (lease)' : cfg.sharding === 'auto' ? 'sharding auto (live replicas in Redis)' : `static shard ${cfg.sharding.shard} of ${cfg.sharding.total_shards}`;
  const ceilings = cfg.shared_egress_ip ? 'per-source-IP ceilings shared by the replicas' : 'a per-source-IP ceiling per replica';
  const t = cfg.redis.tls;
  const tlsText = !t
    ? ''
    : `, TLS ${t.insecure_skip_verify ? 'without verifying the server' : `trusting ${t.ca_file ?? "the system's CAs"}${t.server_name ? ` for ${t.server_name}` : ''}`}${t.cert_file ? `, client certificate ${t.cert_file}` : ''}`;
  const via = cfg.redis.sentinels ? `, primary of master group ${url.hostname} from sentinels ${cfg.redis.sentinels.join(', ')}${cfg.redis.sentinelPassword !== undefined ? ' (password from sentinel_password_file)' : ''}` : '';
  return `cluster: Redis ${redisUrlDisplay(url)}${via}${auth}${tlsText}, key prefix ${cfg.redis.key_prefix}, replica ${cfg.replica_id}, lease ${cfg.lease / 1000}s, ${sharding}, ${ceilings}`;
}
