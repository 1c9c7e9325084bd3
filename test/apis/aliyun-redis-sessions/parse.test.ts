// The DAS GetRedisAllSession parser and the metric rendering, from the documented sample answer (verbatim) and
// hand-made bodies with the quirks of real answers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { App } from '../../../src/core/app';
import { CloudError } from '../../../src/cloud/errors';
import type { CloudTransport } from '../../../src/cloud/transport';
import { parseConfig, ConfigError } from '../../../src/config/load';
import { JOB_TYPES } from '../../../src/apis';
import { buildQuotaPlan, formatQuotaPlan } from '../../../src/core/quota-plan';
import { aggregateRedisSessions, renderRedisFamilies } from '../../../src/apis/aliyun-redis-sessions/aggregate';
import { aliyunRedisSessions } from '../../../src/apis/aliyun-redis-sessions';
import { businessFailure } from '../../../src/cloud/providers/aliyun';
import { ipOfAddr, parseGetRedisAllSession } from '../../../src/apis/aliyun-redis-sessions/parse';
import { appFromYaml, scrapeApp } from '../../helpers/harness';
import { parseExposition } from '../../helpers/exposition';

const SAMPLE_TEXT = fs.readFileSync(path.join(__dirname, 'fixtures', 'sample-response.json'), 'utf8');
const sample = () => JSON.parse(SAMPLE_TEXT) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const DEFAULTS = { maxClientIps: 200, maxCommands: 50, idleThresholds: [60, 300, 3600] };

function session(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...sample().Data.Sessions[0], ...over };
}

function body(sessions: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Code: 200, Message: 'Successful', RequestId: 'req', Success: true, Data: { Timestamp: 1, Total: sessions.length, Sessions: sessions, ...extra } };
}

/** One aliyun_redis_sessions job on account main, `extra` its further keys (indented as job keys). */
const cfg = (extra: string, schedule = '0 * * * * *') => `
accounts:
  - {name: main, provider: aliyun, access_key_id: ak, access_key_secret: sk}
jobs:
  - name: redis
    type: aliyun_redis_sessions
    account: main
    schedule: "${schedule}"
${extra}`;

describe('the documented sample answer', () => {
  test('parses into the right values, string Age and Count included', () => {
    const data = parseGetRedisAllSession(sample());
    expect(data.total).toBe(2);
    expect(data.timestamp).toBe(1660100753556);
    expect(data.sessions).toHaveLength(1);
    expect(data.sessions[0]).toEqual({
      id: 9080586,
      nodeId: 'r-2zemyfd1sh1u2i****-proxy-14#1679****',
      clientIp: '172.16.XX.XX',
      addr: '172.16.XX.XX:53458',
      name: 'test',
      cmd: 'PING',
      idle: 8,
      age: 12,
      flags: 'N',
      sub: 0,
      psub: 0,
      multi: -1,
      omem: 0,
      qbuf: 0,
      qbufFree: 0,
      obl: 0,
      oll: 0,
      db: 0,
      fd: 73,
      events: 'r',
      clientDesc: 'prod ip',
    });
    expect(data.sourceStats).toEqual([{ key: '172.16.XX.XX', count: 1, ids: [9080586] }]);
  });

  test('renders into exactly these metric lines', () => {
    const agg = aggregateRedisSessions(parseGetRedisAllSession(sample()), DEFAULTS);
    const text = renderRedisFamilies('r-2zemyfd1sh1u2i****', agg, 0, 'env="prod"')
      .flatMap((f) => f.chunks)
      .join('');
    const l = (name: string, extra: string, v: number) => `${name}{instance_id="r-2zemyfd1sh1u2i****",${extra ? `${extra},` : ''}env="prod"} ${v}\n`;
    expect(text).toBe(
      [
        l('aliyun_redis_sessions', '', 2),
        l('aliyun_redis_listed_sessions', '', 1),
        l('aliyun_redis_node_sessions', 'node_id="r-2zemyfd1sh1u2i****-proxy-14#1679****"', 1),
        l('aliyun_redis_client_sessions', 'client_ip="172.16.XX.XX"', 1),
        l('aliyun_redis_client_ips_folded_total', '', 0),
        l('aliyun_redis_command_sessions', 'command="ping"', 1),
        l('aliyun_redis_idle_sessions', 'idle_seconds_min="60"', 0),
        l('aliyun_redis_idle_sessions', 'idle_seconds_min="300"', 0),
        l('aliyun_redis_idle_sessions', 'idle_seconds_min="3600"', 0),
        l('aliyun_redis_output_buffer_bytes', '', 0),
        l('aliyun_redis_client_output_buffer_bytes', 'client_ip="172.16.XX.XX"', 0),
        l('aliyun_redis_client_query_buffer_bytes', 'client_ip="172.16.XX.XX"', 0),
        l('aliyun_redis_pubsub_sessions', '', 0),
        l('aliyun_redis_multi_sessions', '', 0),
        l('aliyun_redis_blocked_sessions', '', 0),
        l('aliyun_redis_oldest_session_age_seconds', '', 12),
      ].join(''),
    );
  });

  describe('through the whole exporter', () => {
    let app: App | undefined;
    afterEach(async () => {
      await app?.stop(0);
      app = undefined;
    });

    test('one run produces the documented series with HELP and TYPE, and instance success 1', async () => {
      const calls: Array<{ api: string; params: Record<string, unknown> }> = [];
      const transport: CloudTransport = {
        provider: 'aliyun',
        call: async (req) => {
          calls.push({ api: req.api, params: req.params });
          return sample();
        },
      };
      const built = appFromYaml(
        cfg('    instance_ids: [r-2zemyfd1sh1u2i]\n    idle_thresholds: [5s, 1m]\n    labels: {env: prod}\n', '*/30 * * * * *'),
        {},
        { transports: { aliyun: () => transport } },
      );
      app = built.app;
      await app.runAllNow();
      const text = await scrapeApp(app);
      expect(calls).toEqual([{ api: 'GetRedisAllSession', params: { InstanceId: 'r-2zemyfd1sh1u2i' } }]);
      expect(text).toContain('# HELP aliyun_redis_sessions Current ApsaraDB for Redis sessions (DAS Data.Total). Refreshed on the job schedule, not at scrape time.\n# TYPE aliyun_redis_sessions gauge\naliyun_redis_sessions{instance_id="r-2zemyfd1sh1u2i",env="prod"} 2\n');
      expect(text).toContain('# TYPE aliyun_redis_client_ips_folded_total counter\n');
      expect(text).toContain('aliyun_redis_idle_sessions{instance_id="r-2zemyfd1sh1u2i",idle_seconds_min="5",env="prod"} 1\naliyun_redis_idle_sessions{instance_id="r-2zemyfd1sh1u2i",idle_seconds_min="60",env="prod"} 0\n');
      const s = parseExposition(text);
      expect(s.value('cloud_session_exporter_instance_success', { job_name: 'redis', instance_id: 'r-2zemyfd1sh1u2i' })).toBe(1);
      expect(s.value('cloud_session_exporter_ratelimit_qps', { account: 'main', api: 'GetRedisAllSession' })).toBe(5);
      expect(s.value('aliyun_redis_oldest_session_age_seconds')).toBe(12);
    });
  });
});

describe('type quirks', () => {
  test('Code and Success as strings, every number as a string', () => {
    const b = body(
      [
        session({ Idle: '75', Age: '4000', Sub: '1', Psub: '0', Multi: '-1', Omem: '1024', Qbuf: '26', Id: '9080587', Fd: '9' }),
      ],
      { Total: '7', Timestamp: '1660100753556', SourceStats: [{ Key: '10.0.0.1', Count: '7', Ids: ['9080587'] }] },
    );
    b.Code = '200';
    b.Success = 'true';
    const data = parseGetRedisAllSession(b);
    expect(data.total).toBe(7);
    expect(data.sessions[0]).toMatchObject({ idle: 75, age: 4000, sub: 1, multi: -1, omem: 1024, qbuf: 26, id: 9080587, fd: 9 });
    expect(data.sourceStats).toEqual([{ key: '10.0.0.1', count: 7, ids: [9080587] }]);
  });

  test('absent fields take CLIENT LIST neutral values; Client falls back to the IP of Addr', () => {
    const data = parseGetRedisAllSession(body([{ Addr: '10.1.2.3:6000', Cmd: 'GET', NodeId: 'n1', Age: '5' }]));
    expect(data.sessions[0]).toMatchObject({ clientIp: '10.1.2.3', multi: -1, sub: 0, psub: 0, omem: 0, qbuf: 0, idle: 0, flags: '', fd: -1 });
    expect(data.sourceStats).toBeUndefined();
    expect(ipOfAddr('[::1]:6379')).toBe('::1');
    expect(ipOfAddr('fe80::1')).toBe('fe80::1');
    expect(ipOfAddr('/tmp/redis.sock')).toBe('/tmp/redis.sock');
  });

  test('Total may exceed the sessions listed; a missing Total falls back to the list; Count falls back to Ids', () => {
    expect(parseGetRedisAllSession(body([session()], { Total: 5000 })).total).toBe(5000);
    const noTotal = body([session(), session({ Id: 2 })]);
    delete (noTotal.Data as Record<string, unknown>).Total;
    expect(parseGetRedisAllSession(noTotal).total).toBe(2);
    expect(parseGetRedisAllSession(body([], { SourceStats: [{ Key: 'a', Ids: [1, 2, 3] }] })).sourceStats).toEqual([{ key: 'a', count: 3, ids: [1, 2, 3] }]);
  });

  test('a json-bigint BigNumber is read as a number', () => {
    const big = { isBigNumber: true, toString: () => '12345678901234567' };
    expect(parseGetRedisAllSession(body([session({ Id: big })])).sessions[0].id).toBe(12345678901234568);
  });
});

describe('bad values name the field and its index', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['Age not numeric', () => body([session(), session({ Age: 'twelve' })]), /^Data\.Sessions\[1\]\.Age: "twelve" is not a number$/],
    ['negative Idle', () => body([session({ Idle: -3 })]), /^Data\.Sessions\[0\]\.Idle: -3 is below 0$/],
    ['Omem an object', () => body([session({ Omem: { a: 1 } })]), /^Data\.Sessions\[0\]\.Omem: an object is not a number$/],
    ['Flags a list', () => body([session({ Flags: ['N'] })]), /^Data\.Sessions\[0\]\.Flags: a list is not a string$/],
    ['fractional Sub', () => body([session({ Sub: '1.5' })]), /^Data\.Sessions\[0\]\.Sub: "1\.5" is not a whole number$/],
    ['Count not numeric', () => body([], { SourceStats: [{ Key: 'a', Count: '1' }, { Key: 'b', Count: 'n/a' }] }), /^Data\.SourceStats\[1\]\.Count: "n\/a" is not a number$/],
    ['Ids entry', () => body([], { SourceStats: [{ Key: 'a', Count: '1', Ids: [1, 'x'] }] }), /^Data\.SourceStats\[0\]\.Ids\[1\]: "x" is not a number$/],
    ['Sessions not a list', () => body([], { Sessions: { a: 1 } }), /^Data\.Sessions: an object is not a list$/],
    ['a session that is not an object', () => body([session(), 'x' as unknown as Record<string, unknown>]), /^Data\.Sessions\[1\]: "x" is not an object$/],
    ['Total not numeric', () => body([], { Total: 'many' }), /^Data\.Total: "many" is not a number$/],
    ['Data missing', () => ({ Code: 200, Success: true, RequestId: 'r' }), /^Data is missing/],
  ];
  for (const [name, make, message] of cases) {
    test(name, () => {
      let err: unknown;
      try {
        parseGetRedisAllSession(make());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(CloudError); // the API client turns it into MalformedResponse
      expect((err as Error).message).toMatch(message);
    });
  }
});

describe('business failures (the Alibaba provider\'s convention)', () => {
  test('Success:false with Code 200 is a non-retryable BusinessFailure', () => {
    for (const success of [false, 'false']) {
      const err = businessFailure('GetRedisAllSession', { Code: 200, Message: 'Failed to get the sessions.', Success: success, RequestId: 'req-1' });
      expect(err).toBeInstanceOf(CloudError);
      expect(err).toMatchObject({ code: 'BusinessFailure', retryable: false, throttled: false, requestId: 'req-1', api: 'GetRedisAllSession' });
      expect(err!.message).toContain('Failed to get the sessions.');
    }
  });

  test('a failing Code keeps the body code; retryable and throttling as the provider classes them', () => {
    expect(businessFailure('X', { Code: '-1001', Success: false, Message: 'x' })).toMatchObject({ code: '-1001', retryable: false });
    expect(businessFailure('X', { Code: 'NoPermission', Success: false })).toMatchObject({ code: 'NoPermission', retryable: false });
    expect(businessFailure('X', { Code: 'Throttling.User', Success: false })).toMatchObject({ code: 'Throttling.User', retryable: true, throttled: true });
    expect(businessFailure('X', { Code: 200, Success: true, Data: {} })).toBeUndefined();
  });
});

describe('aggregation', () => {
  test('client IPs: top N by SourceStats, the rest in other; buffers use the same kept IPs', () => {
    const sessions = [
      session({ Client: '10.0.0.1', Omem: 100, Qbuf: 1 }),
      session({ Client: '10.0.0.1', Omem: 100, Qbuf: 1 }),
      session({ Client: '10.0.0.2', Omem: 10, Qbuf: 2 }),
      session({ Client: '10.0.0.3', Omem: 1, Qbuf: 4 }),
      // An IP DAS does not list in SourceStats still lands in "other" for buffers.
      session({ Client: '', Addr: '10.0.0.9:1234', Omem: 1000, Qbuf: 8 }),
    ];
    const data = parseGetRedisAllSession(
      body(sessions, {
        Total: 40,
        SourceStats: [
          { Key: '10.0.0.1', Count: '20' },
          { Key: '10.0.0.2', Count: '12' },
          { Key: '10.0.0.3', Count: '5' },
          { Key: '10.0.0.4', Count: '3' },
        ],
      }),
    );
    const agg = aggregateRedisSessions(data, { ...DEFAULTS, maxClientIps: 2 });
    expect([...agg.clientSessions]).toEqual([
      ['10.0.0.1', 20],
      ['10.0.0.2', 12],
      ['other', 8],
    ]);
    expect(agg.foldedIps).toBe(2);
    expect(Object.fromEntries(agg.clientOutputBuffer)).toEqual({ '10.0.0.1': 200, '10.0.0.2': 10, other: 1001 });
    expect(Object.fromEntries(agg.clientQueryBuffer)).toEqual({ '10.0.0.1': 2, '10.0.0.2': 2, other: 12 });
    expect(agg.outputBuffer).toBe(1211);
  });

  test('commands lower-cased and capped; idle, pubsub, multi, blocked, oldest', () => {
    const sessions = [
      session({ Cmd: 'GET', Idle: 0, Age: '10' }),
      session({ Cmd: 'get', Idle: 60, Age: '99999' }),
      session({ Cmd: 'SET', Idle: 301 }),
      session({ Cmd: 'BLPOP', Flags: 'b', Idle: 4000 }),
      session({ Cmd: 'SUBSCRIBE', Flags: 'P', Sub: 2 }),
      session({ Cmd: 'PSUBSCRIBE', Flags: 'P', Psub: 1 }),
      session({ Cmd: 'MULTI', Flags: 'x', Multi: 0 }),
      session({ Cmd: 'EXEC', Multi: 3 }),
      session({ Cmd: '' }),
    ];
    const agg = aggregateRedisSessions(parseGetRedisAllSession(body(sessions)), { ...DEFAULTS, maxCommands: 3, idleThresholds: [3600, 60, 300, 60] });
    expect(Object.fromEntries(agg.commands)).toEqual({ get: 2, blpop: 1, exec: 1, other: 5 });
    expect(agg.idle).toEqual([
      [60, 3],
      [300, 2],
      [3600, 1],
    ]);
    expect(agg).toMatchObject({ pubsub: 2, multi: 2, blocked: 1, oldestAge: 99999, listed: 9, total: 9 });
  });

  test('without SourceStats, per-IP sessions come from the listed sessions', () => {
    const agg = aggregateRedisSessions(parseGetRedisAllSession(body([session({ Client: 'a' }), session({ Client: 'a' }), session({ Client: 'b' })])), DEFAULTS);
    expect(Object.fromEntries(agg.clientSessions)).toEqual({ a: 2, b: 1 });
  });
});

describe('configuration', () => {

  test('defaults and the quota plan', () => {
    const parsed = parseConfig(cfg('    instance_ids: [r-1, r-2, r-3]\n'), 't.yml', { env: {}, jobTypes: JOB_TYPES });
    const job = parsed.jobs[0] as Record<string, unknown>;
    expect(job).toMatchObject({ max_client_ips: 200, max_commands: 50, idle_thresholds: [60, 300, 3600] });
    expect(job.endpoint).toBeUndefined();
    expect(aliyunRedisSessions.plan(job as never, '/', [])).toEqual([{ account: 'main', api: 'GetRedisAllSession', endpoint: 'https://das.cn-shanghai.aliyuncs.com', callsPerRun: 3, basis: '3 instances, one call each' }]);
    const custom = parseConfig(cfg('    instance_ids: [r-1]\n    endpoint: http://127.0.0.1:1/\n    idle_thresholds: [30s, 10m, 90]\n'), 't.yml', { env: {}, jobTypes: JOB_TYPES });
    expect(custom.jobs[0]).toMatchObject({ endpoint: 'http://127.0.0.1:1', idle_thresholds: [30, 600, 90] });
  });

  test('problems are reported with their paths', () => {
    const problems = (extra: string) => {
      try {
        parseConfig(cfg(extra), 't.yml', { env: {}, jobTypes: JOB_TYPES });
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems('    instance_ids: []\n').join('\n')).toMatch(/instance_ids.*at least one/);
    expect(problems('    instance_ids: [r-1, r-1]\n').join('\n')).toMatch(/instance_ids\[1\] \(line \d+\): duplicate instance ID "r-1"/);
    expect(problems('    instance_ids: [r-1]\n    idle_thresholds: [soon]\n').join('\n')).toMatch(/idle_thresholds\[0\].*invalid duration/);
    expect(problems('    instance_ids: [r-1]\n    max_client_ips: 0\n').join('\n')).toMatch(/max_client_ips/);
    expect(problems('    instance_ids: [r-1]\n    labels: {client_ip: x}\n').join('\n')).toMatch(/collides/);
  });

  test('config/examples/aliyun-redis-sessions.yml is valid and plans one call per instance', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-example-'));
    try {
      fs.writeFileSync(path.join(dir, 'secret'), 'sk\n');
      const text = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'config', 'examples', 'aliyun-redis-sessions.yml'), 'utf8').replace('/run/secrets/aliyun_access_key_secret', path.join(dir, 'secret'));
      const parsed = parseConfig(text, path.join(dir, 'redis.yml'), { env: { ALIBABA_CLOUD_ACCESS_KEY_ID: 'ak' }, jobTypes: JOB_TYPES });
      expect(parsed.jobs[0]).toMatchObject({ type: 'aliyun_redis_sessions', idle_thresholds: [60, 300, 3600], max_client_ips: 200, max_commands: 50 });
      const plan = formatQuotaPlan(buildQuotaPlan(parsed, JOB_TYPES));
      expect(plan).toContain('GetRedisAllSession');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
