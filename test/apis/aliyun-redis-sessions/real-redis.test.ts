// A Redis-backed emulator instance: the test starts its own redis-server on a free port, opens real connections
// (one subscribed, one inside MULTI, one blocked in BLPOP), and watches them appear in the metrics and go away.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { App } from '../../../src/core/app';
import { startEmulator, type Emulator } from '../../../emulator/server';
import { parseScenario } from '../../../emulator/scenario';
import { startRedisServer, type RedisServer } from '../../helpers/servers';
import { appFromYaml, scrapeApp } from '../../helpers/harness';
import { parseExposition, type Scrape } from '../../helpers/exposition';

const INSTANCE = 'r-real-redis';

function encode(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** A bare RESP connection: send a command, optionally wait until the received text contains `expect`. */
class RawRedis {
  private received = '';
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(port: number): Promise<RawRedis> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new RawRedis(socket));
      });
      socket.once('error', reject);
    });
  }

  async send(args: string[], expectText?: string, timeoutMs = 5000): Promise<string> {
    const from = this.received.length;
    this.socket.write(encode(args));
    if (expectText === undefined) return '';
    const deadline = Date.now() + timeoutMs;
    while (!this.received.slice(from).includes(expectText)) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(expectText)} after ${args.join(' ')}; got ${JSON.stringify(this.received.slice(from))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.received.slice(from);
  }

  async close(): Promise<void> {
    this.socket.end();
    this.socket.destroy();
    await this.closed;
  }
}

let redis: RedisServer | undefined;
let redisPort: number;
let control: RawRedis;
let emulator: Emulator;
let app: App;
const opened: RawRedis[] = [];

/** CLIENT LIST as the control connection sees it. */
async function clientList(): Promise<string> {
  return control.send(['CLIENT', 'LIST'], 'id=');
}

async function poll(): Promise<Scrape> {
  await app.runAllNow();
  return parseExposition(await scrapeApp(app));
}

beforeAll(async () => {
  redis = await startRedisServer();
  redisPort = redis.port;
  await vi.waitFor(
    async () => {
      control = await RawRedis.connect(redisPort);
    },
    { timeout: 10_000, interval: 100 },
  );
  await control.send(['CLIENT', 'SETNAME', 'control'], '+OK');

  emulator = await startEmulator({
    scenario: parseScenario(
      `
credentials:
  - {account: main, provider: aliyun, access_key_id: LTAI-real-redis, access_key_secret: real-redis-secret}
redis:
  instances:
    - instance_id: ${INSTANCE}
      redis: {host: 127.0.0.1, port: ${redisPort}}
`,
      'real-redis-test',
    ),
    port: 0,
  });
  ({ app } = appFromYaml(
    `
accounts:
  - {name: main, provider: aliyun, access_key_id: LTAI-real-redis, access_key_secret: real-redis-secret}
jobs:
  - name: redis-real
    type: aliyun_redis_sessions
    account: main
    schedule: "0 * * * * *"
    endpoint: \${EMULATOR_URL}
    instance_ids: [${INSTANCE}]
`,
    { EMULATOR_URL: emulator.url },
  ));
});

afterAll(async () => {
  for (const c of opened) await c.close().catch(() => undefined);
  await control?.close().catch(() => undefined);
  await app?.stop(0);
  await emulator?.close();
  await redis?.stop();
});

describe('a real-Redis-backed instance', () => {
  const m = { instance_id: INSTANCE };
  const N = 4;

  test('connections the test opens appear in the metrics, and disappear once closed', async () => {
    const base = await poll();
    expect(base.value('cloud_session_exporter_instance_success', { job_name: 'redis-real', instance_id: INSTANCE })).toBe(1);
    const baseSessions = base.value('aliyun_redis_sessions', m)!;
    expect(baseSessions).toBeGreaterThanOrEqual(1); // the control connection
    const basePubsub = base.value('aliyun_redis_pubsub_sessions', m)!;
    const baseMulti = base.value('aliyun_redis_multi_sessions', m)!;
    const baseBlocked = base.value('aliyun_redis_blocked_sessions', m)!;

    for (let i = 0; i < N; i++) {
      const c = await RawRedis.connect(redisPort);
      opened.push(c);
      await c.send(['CLIENT', 'SETNAME', `session-${i}`], '+OK');
    }
    await opened[1].send(['SUBSCRIBE', 'news'], 'subscribe');
    await opened[2].send(['MULTI'], '+OK');
    await opened[2].send(['SET', 'k', 'v'], '+QUEUED');
    await opened[3].send(['BLPOP', 'no-such-list', '0']);
    await vi.waitFor(async () => expect(await clientList()).toMatch(/name=session-3 .*flags=b/), { timeout: 5000, interval: 50 });

    const during = await poll();
    expect(during.value('aliyun_redis_sessions', m)).toBe(baseSessions + N);
    expect(during.value('aliyun_redis_listed_sessions', m)).toBe(baseSessions + N);
    expect(during.value('aliyun_redis_pubsub_sessions', m)).toBe(basePubsub + 1);
    expect(during.value('aliyun_redis_multi_sessions', m)).toBe(baseMulti + 1);
    expect(during.value('aliyun_redis_blocked_sessions', m)).toBe(baseBlocked + 1);
    expect(during.byLabel('aliyun_redis_client_sessions', 'client_ip', m)).toEqual(new Map([['127.0.0.1', baseSessions + N]]));
    expect(during.byLabel('aliyun_redis_node_sessions', 'node_id', m)).toEqual(new Map([[`${INSTANCE}-db-0`, baseSessions + N]]));
    const commands = during.byLabel('aliyun_redis_command_sessions', 'command', m);
    expect(commands.get('blpop')).toBe(1);
    expect(commands.get('subscribe')).toBe(1);
    expect(during.value('aliyun_redis_oldest_session_age_seconds', m)).toBeGreaterThanOrEqual(0);
    expect(during.value('aliyun_redis_client_query_buffer_bytes', { ...m, client_ip: '127.0.0.1' })).toBeGreaterThanOrEqual(0);

    for (const c of opened.splice(0)) await c.close();
    await vi.waitFor(async () => expect(await clientList()).not.toMatch(/name=session-/), { timeout: 5000, interval: 50 });

    const after = await poll();
    expect(after.value('aliyun_redis_sessions', m)).toBe(baseSessions);
    expect(after.value('aliyun_redis_pubsub_sessions', m)).toBe(basePubsub);
    expect(after.value('aliyun_redis_multi_sessions', m)).toBe(baseMulti);
    expect(after.value('aliyun_redis_blocked_sessions', m)).toBe(baseBlocked);
    expect(after.byLabel('aliyun_redis_command_sessions', 'command', m).has('blpop')).toBe(false);
    expect(after.value('cloud_session_exporter_instance_success', { job_name: 'redis-real', instance_id: INSTANCE })).toBe(1);
  });
});
