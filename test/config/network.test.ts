// endpoint_type's endpoints per API (explicit `endpoint:` wins), and what --config.check's quota plan says about
// each job's endpoint and route; proxy_url's password registered for redaction as the config is read.
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { buildQuotaPlan, formatQuotaPlan } from '../../src/core/quota-plan';
import { redact } from '../../src/util/redact';

function config(jobs: string, accountKeys = ''): ReturnType<typeof parseConfig> {
  return parseConfig(
    `
accounts:
  - {name: ali, provider: aliyun, access_key_id: ak-0123, access_key_secret: sk-0123${accountKeys}}
  - {name: ten, provider: tencentcloud, secret_id: ak-0123, secret_key: sk-0123${accountKeys}}
jobs:
${jobs}`,
    'network.yml',
    { env: {}, jobTypes: JOB_TYPES },
  );
}

const jobs = (endpointType: string, region = 'ap-guangzhou') => `
  - {name: fleet, type: aliyun_mqtt_sessions, account: ali, schedule: "0 * * * * *", region: cn-shenzhen, instance_id: post-cn-1, client_ids: [GID_sensor@@@d1]${endpointType}}
  - {name: canary, type: aliyun_mqtt_probe, account: ali, schedule: "0 * * * * *", region: cn-shenzhen, instance_id: post-cn-1, topic: canary${endpointType}}
  - {name: redis, type: aliyun_redis_sessions, account: ali, schedule: "0 * * * * *", instance_ids: [r-1]${endpointType}}
  - {name: mongo, type: tencentcloud_mongodb_connections, account: ten, schedule: "0 * * * * *", region: ${region}, instance_ids: [cmgo-1]${endpointType}}
`;

const endpoints = (cfg: ReturnType<typeof parseConfig>) => Object.fromEntries(buildQuotaPlan(cfg, JOB_TYPES, {}).rows.map((r) => [r.job, r.endpoint]));

describe('endpoint_type', () => {
  test('public (the default) and vpc pick each API\'s endpoints; an explicit endpoint wins', () => {
    const publicOnes = {
      fleet: 'https://onsmqtt.cn-shenzhen.aliyuncs.com',
      canary: 'https://onsmqtt.cn-shenzhen.aliyuncs.com',
      redis: 'https://das.cn-shanghai.aliyuncs.com',
      mongo: 'https://mongodb.tencentcloudapi.com',
    };
    expect(endpoints(config(jobs('')))).toEqual(publicOnes);
    expect(endpoints(config(jobs(', endpoint_type: public')))).toEqual(publicOnes);
    expect(endpoints(config(jobs(', endpoint_type: vpc')))).toEqual({
      fleet: 'https://onsmqtt-vpc.cn-shenzhen.aliyuncs.com',
      canary: 'https://onsmqtt-vpc.cn-shenzhen.aliyuncs.com',
      redis: 'https://das.vpc-proxy.aliyuncs.com',
      mongo: 'https://mongodb.internal.tencentcloudapi.com',
    });
    const explicit = endpoints(config(jobs(', endpoint_type: vpc, endpoint: "https://mongodb.intl.tencentcloudapi.com/"')));
    expect(new Set(Object.values(explicit))).toEqual(new Set(['https://mongodb.intl.tencentcloudapi.com']));
  });

  test('a financial-zone region defaults to its own -fsi domain: the nearest-region domain does not serve it', () => {
    expect(endpoints(config(jobs('', 'ap-shanghai-fsi'))).mongo).toBe('https://mongodb.ap-shanghai-fsi.tencentcloudapi.com');
  });
});

describe("--config.check's endpoints and routes", () => {
  test('each job names its endpoint and how its calls get there, never a proxy password', () => {
    const cfg = config(jobs(', endpoint_type: vpc'));
    const env = { HTTPS_PROXY: 'http://svc:plan-Pa55word-1@proxy.corp:3128', NO_PROXY: '.vpc-proxy.aliyuncs.com,internal.tencentcloudapi.com' };
    const text = formatQuotaPlan(buildQuotaPlan(cfg, JOB_TYPES, env));
    expect(text).toContain(
      [
        'Endpoints:',
        '  fleet (ali): https://onsmqtt-vpc.cn-shenzhen.aliyuncs.com, through proxy http://proxy.corp:3128 (HTTPS_PROXY)',
        '  canary (ali): https://onsmqtt-vpc.cn-shenzhen.aliyuncs.com, through proxy http://proxy.corp:3128 (HTTPS_PROXY)',
        '  redis (ali): https://das.vpc-proxy.aliyuncs.com, direct (NO_PROXY lists the host)',
        '  mongo (ten): https://mongodb.internal.tencentcloudapi.com, direct (NO_PROXY lists the host)',
      ].join('\n'),
    );
    expect(text).not.toContain('plan-Pa55word-1');
    expect(text).not.toContain('svc');
  });

  test('proxy_url: "" is shown as direct, and an unusable proxy variable is a warning naming the variable', () => {
    expect(formatQuotaPlan(buildQuotaPlan(config(jobs(''), ', proxy_url: ""'), JOB_TYPES, { HTTPS_PROXY: 'http://p:1' }))).toContain('  mongo (ten): https://mongodb.tencentcloudapi.com, direct (proxy_url is empty)');
    const plan = buildQuotaPlan(config(jobs('')), JOB_TYPES, { https_proxy: 'socks5://s:1080' });
    expect(plan.warnings).toContain('job mongo: its calls to https://mongodb.tencentcloudapi.com cannot be sent: https_proxy has the scheme socks5: only http:// and https:// proxies are supported');
  });

  test("reading proxy_url registers its password (and user:password, the header's base64) for redaction, not the user", () => {
    config(jobs(''), ', proxy_url: "http://proxyuser:cfg-Pa55word-7@proxy.corp:3128"');
    expect(redact('cfg-Pa55word-7 proxyuser')).toBe('REDACTED proxyuser');
    expect(redact(`Proxy-Authorization: Basic ${Buffer.from('proxyuser:cfg-Pa55word-7').toString('base64')}`)).not.toContain(Buffer.from('proxyuser:cfg-Pa55word-7').toString('base64').slice(4, 20));
  });
});
