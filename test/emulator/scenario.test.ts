import { describe, expect, it } from 'vitest';
import { parseListen, parseArgs } from '../../emulator/main';
import { ScenarioError } from '../../emulator/core/scenario';
import { loadScenario, parseScenario } from '../../emulator/scenario';
import type { TestScenario } from '../helpers/harness';
import { DEMO_SCENARIO_PATH, TEST_SCENARIO_PATH } from './helpers';

function problems(yaml: string): string[] {
  try {
    parseScenario(yaml, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as ScenarioError).problems;
  }
  throw new Error('expected the scenario to be refused');
}

describe('scenario files', () => {
  it('loads the shipped scenarios', () => {
    const demo = loadScenario(DEMO_SCENARIO_PATH) as TestScenario;
    expect(demo.mqtt.instances.map((i) => i.instance_id)).toEqual(['post-cn-demo0001', 'post-cn-demo0002']);
    expect(demo.mongodb.instances.map((i) => i.instance_id)).toEqual(['cmgo-demo0001', 'cmgo-demo0002', 'cmgo-legacy01']);
    expect(demo.redis.instances.map((i) => i.instance_id)).toEqual(['r-demo0001', 'r-demo0002']);
    expect(demo.credentials).toContainEqual({
      account: 'aliyun-demo',
      provider: 'aliyun',
      access_key_id: 'LTAI-demo-access-key',
      access_key_secret: 'demo-secret-change-me',
    });
    expect(demo.credentials).toContainEqual({
      account: 'tencent-demo',
      provider: 'tencentcloud',
      secret_id: 'AKID-demo-secret-id',
      secret_key: 'demo-tencent-key',
    });
    expect((loadScenario(TEST_SCENARIO_PATH) as TestScenario).mqtt.instances[0]?.fleets[0]).toEqual({
      group_id: 'GID_sensor',
      prefix: 'dev-',
      size: 50,
      online_ratio: 0.6,
      churn_per_minute: 0,
    });
  });

  it('names the path of an unknown key', () => {
    expect(problems('mqtt:\n  instances:\n    - instance_id: a\n      fleets:\n        - {group_id: GID_a, sise: 3, size: 1}\n')).toEqual([
      'mqtt.instances[0].fleets[0].sise: unknown key',
    ]);
    expect(problems('seeed: 1\n')).toEqual(['seeed: unknown key']);
  });

  it('explains bad values, providers and cross references', () => {
    expect(problems('credentials:\n  - {account: a, provider: azure}\n')).toEqual(['credentials[0].provider: must be one of aliyun, tencentcloud']);
    expect(problems('rate_limits: {Batch: 3}\n')[0]).toMatch(/^rate_limits\.Batch: /);
    expect(problems('faults: {SendMessage: {error_rates: {InternalError: 0.7}, timeout_rate: 0.5}}\n')[0]).toMatch(
      /^faults\.SendMessage: .*must not exceed 1/,
    );
    expect(problems('mongodb:\n  instances:\n    - {instance_id: c, account: ghost}\n')).toEqual([
      'mongodb.instances[0].account: no tencentcloud credential has account "ghost"',
    ]);
    expect(problems('redis:\n  instances:\n    - {instance_id: r}\n    - {instance_id: r}\n')).toEqual([
      'redis.instances[1].instance_id: duplicate instance_id "r"',
    ]);
    expect(problems('mqtt:\n  instances:\n    - instance_id: a\n      fleets: [{group_id: G, size: "ten"}]\n')[0]).toMatch(
      /^mqtt\.instances\[0\]\.fleets\[0\]\.size: /,
    );
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(problems('seed: 1\nseed: 2\n')[0]).toMatch(/unique|duplicate/i);
    expect(problems('mqtt: [\n').length).toBeGreaterThan(0);
  });
});

describe('cloud-session-emulator arguments', () => {
  it('parses --scenario and --listen', () => {
    expect(parseArgs(['--scenario', 'a.yaml', '--listen=127.0.0.1:0'])).toEqual({ scenario: 'a.yaml', listen: '127.0.0.1:0' });
    expect(parseArgs(['--scenario=a.yaml'])).toEqual({ scenario: 'a.yaml', listen: '127.0.0.1:18080' });
    expect(() => parseArgs([])).toThrow(/--scenario/);
    expect(() => parseArgs(['--scenario', 'a', '--port', '1'])).toThrow(/--port/);
    expect(parseListen('127.0.0.1:18080')).toEqual({ host: '127.0.0.1', port: 18080 });
    expect(parseListen('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(() => parseListen('localhost')).toThrow();
  });

  it('parses --broker-listen and names the flag when it is malformed', () => {
    expect(parseArgs(['--scenario', 'a.yaml', '--broker-listen', '0.0.0.0:18883'])).toEqual({ scenario: 'a.yaml', listen: '127.0.0.1:18080', brokerListen: '0.0.0.0:18883' });
    expect(() => parseListen('18883', '--broker-listen')).toThrow(/--broker-listen must be HOST:PORT, got "18883"/);
  });
});
