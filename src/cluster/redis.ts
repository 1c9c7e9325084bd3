// The Redis connection the cluster modules share (cluster.redis in the config), set up to fail fast instead of waiting.
import fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import Redis, { type RedisOptions } from 'ioredis';
import { sentinelAddress, type RedisTlsConfig } from '../config/cluster';

export interface ClusterRedisOptions {
  /** redis://[user:password@]host:port/db, or rediss:// for TLS (cluster.redis.url). */
  url: string;
  /** The password of cluster.redis.password_file (read with the config); wins over a password in the URL. */
  password?: string;
  /**
   * Longest a command may take before Redis counts as unavailable (default 1,000 ms). A call waiting for a grant waits
   * at most this long before its replica falls back to its local share.
   */
  commandTimeoutMs?: number;
  /** How often to try again while Redis is unreachable (default 500 ms). */
  reconnectMs?: number;
  /** Redis Sentinel: host:port of each sentinel; the URL's host is then the master group's name. */
  sentinels?: readonly string[];
  sentinelPassword?: string;
  /** cluster.redis.tls, its paths absolute (rediss:// only). */
  tls?: RedisTlsConfig;
  /** Connection errors (refused, reset, TLS); commands fail as well, which is how the cluster modules notice. */
  onError?: (err: Error) => void;
}

/**
 * Node TLS options whose ca, cert and key read their files when ioredis copies them, at each (re)connection: a
 * renewed certificate or CA (cert-manager, a Kubernetes Secret volume) is used from the next connection on, without
 * a restart or a reload. A file that cannot be read then keeps its last content, reported through onError.
 */
function tlsFromFiles(t: RedisTlsConfig, onError: (err: Error) => void): ConnectionOptions {
  const options: ConnectionOptions = {
    rejectUnauthorized: !t.insecure_skip_verify,
    ...(t.server_name !== undefined ? { servername: t.server_name } : {}),
  };
  const files = { ca: ['ca_file', t.ca_file], cert: ['cert_file', t.cert_file], key: ['key_file', t.key_file] } as const;
  for (const [option, [key, file]] of Object.entries(files)) {
    if (file === undefined) continue;
    let last: Buffer | undefined;
    Object.defineProperty(options, option, {
      enumerable: true,
      get: () => {
        try {
          last = fs.readFileSync(file);
        } catch (err) {
          onError(new Error(`cluster.redis.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); connecting with the last one read`));
        }
        return last;
      },
    });
  }
  return options;
}

/**
 * The primary of `name` as the sentinels tell it, asked again at every reconnect (ioredis also checks that the node
 * it reaches is a primary, so a demoted one is left). Sentinels that do not answer are tried in turn, then again
 * after `reconnectMs`, like Redis itself.
 */
function sentinelOptions(sentinels: readonly string[], name: string, sentinelPassword: string | undefined, reconnectMs: number, commandTimeoutMs: number): RedisOptions {
  return {
    name,
    sentinels: sentinels.map((a) => sentinelAddress(a)!),
    ...(sentinelPassword !== undefined ? { sentinelPassword } : {}),
    sentinelRetryStrategy: () => reconnectMs,
    sentinelCommandTimeout: commandTimeoutMs,
    // Not ioredis' failoverDetector: its disconnect on +switch-master, landing during a reconnect attempt (the old
    // primary just died), ends the client for good (measured: ioredis 5.11, status "end", no more reconnects). A dead
    // primary drops the connection anyway, and the sentinels close the clients of one they demote (CLIENT KILL);
    // a primary demoted by hand answers READONLY, which reconnects (below).
  };
}

/**
 * A client that never queues commands while disconnected and never resends them after a reconnect: a grant that
 * cannot be answered now is worth nothing later (the caller has fallen back to its local share by then), and a
 * resent grant would spend a window slot nobody uses.
 */
export function connectClusterRedis(opts: ClusterRedisOptions): Redis {
  let url = opts.url;
  const password = opts.password;
  if (password !== undefined) {
    const parsed = new URL(url);
    parsed.password = '';
    url = parsed.toString();
  }
  const reconnectMs = opts.reconnectMs ?? 500;
  const commandTimeoutMs = opts.commandTimeoutMs ?? 1000;
  const onError = opts.onError ?? (() => undefined);
  const redis = new Redis(url, {
    ...(password !== undefined ? { password } : {}),
    ...(opts.tls ? { tls: tlsFromFiles(opts.tls, onError) } : {}),
    ...(opts.sentinels ? sentinelOptions(opts.sentinels, new URL(opts.url).hostname, opts.sentinelPassword, reconnectMs, commandTimeoutMs) : {}),
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    retryStrategy: () => reconnectMs,
    // Every failure is reported to the caller (no resend). With sentinels, READONLY means the primary was demoted
    // while this connection stayed up: reconnect, asking the sentinels again.
    reconnectOnError: (err) => (opts.sentinels !== undefined && err.message.startsWith('READONLY') ? 1 : false),
  });
  // Without a listener ioredis prints every failed reconnect attempt to the console.
  redis.on('error', onError);
  return redis;
}

export type ScriptRunner = (keys: readonly string[], args: ReadonlyArray<string | number | Buffer>) => Promise<unknown>;

/**
 * A Lua script sent as EVALSHA. ioredis sends the full text once per connection (so a restarted, empty Redis gets it
 * again on the new connection) and falls back to EVAL when the server answers NOSCRIPT (SCRIPT FLUSH, failover).
 */
export function defineScript(redis: Redis, name: string, lua: string): ScriptRunner {
  redis.defineCommand(name, { lua });
  const command = (redis as unknown as Record<string, (...a: Array<string | number | Buffer>) => Promise<unknown>>)[name].bind(redis);
  return (keys, args) => command(keys.length, ...keys, ...args);
}

/**
 * Redis time as seen from this process. Every script answers with Redis' TIME; the request left at `sentAt` and the
 * answer came at `receivedAt` (performance.now()), so at any later local moment l Redis' clock read at least
 * time + (l - receivedAt) and at most time + (l - sentAt). Used for deadlines: a script executed after its deadline
 * changes nothing, so a request that timed out here cannot take effect later (a Redis that was paused and resumes
 * executes everything still in its socket buffer).
 */
export class RedisClock {
  private redisTime = NaN;
  private receivedAt = NaN;

  constructor(private readonly now: () => number) {}

  get known(): boolean {
    return !Number.isNaN(this.redisTime);
  }

  note(redisTime: number, receivedAt: number): void {
    this.redisTime = redisTime;
    this.receivedAt = receivedAt;
  }

  /**
   * The latest Redis time at which a request sent now may still take effect, given that this process gives up on it
   * after `timeoutMs`: before the give-up moment by the lower bound of Redis' clock, less 0.1% of the time since
   * the clock was read (clock rates differ) and 5 ms.
   */
  deadline(timeoutMs: number): number {
    const elapsed = this.now() - this.receivedAt;
    return this.redisTime + elapsed + timeoutMs - 5 - 0.001 * elapsed;
  }
}
