// Shared set-up for the emulator tests: the test scenario, real SDK clients and a raw HTTP helper.
import http from 'node:http';
import path from 'node:path';
import RPCClient from '@alicloud/pop-core';
import * as tencentcloud from 'tencentcloud-sdk-nodejs-mongodb';
import type { TestScenario } from '../helpers/harness';
import { loadScenario, normalizeScenario } from '../../emulator/scenario';

export const TEST_SCENARIO_PATH = path.join(__dirname, '../../config/scenarios/test-basic.yaml');
export const DEMO_SCENARIO_PATH = path.join(__dirname, '../../config/scenarios/demo.yaml');

export function testScenario(patch: (s: TestScenario) => void = () => {}): TestScenario {
  const s = loadScenario(TEST_SCENARIO_PATH) as TestScenario;
  patch(s);
  return s;
}

/** The test scenario with one MQTT instance (cn-hangzhou, batch API on) holding one generated fleet. */
export function oneFleetScenario(instanceId: string, fleet: { group_id: string; size: number; online_ratio: number; churn_per_minute: number }): TestScenario {
  const s = testScenario();
  // Validated again, so that the instance's keys left out take their defaults.
  return normalizeScenario({ ...s, mqtt: { instances: [{ instance_id: instanceId, region: 'cn-hangzhou', fleets: [{ prefix: 'dev-', ...fleet }] }] } }) as TestScenario;
}

const ALIYUN = { accessKeyId: 'LTAI-test-key', accessKeySecret: 'test-secret' };
export const TENCENT = { secretId: 'AKID-test-id', secretKey: 'test-tencent-key' };

export function popClient(url: string, apiVersion: string, creds: Partial<RPCClient.Config> = {}, verbose = false): RPCClient {
  const Ctor = RPCClient as unknown as new (config: RPCClient.Config, verbose?: boolean) => RPCClient;
  return new Ctor({ endpoint: url, apiVersion, ...ALIYUN, ...creds }, verbose);
}

export const mqttClient = (url: string, creds: Partial<RPCClient.Config> = {}): RPCClient => popClient(url, '2020-04-20', creds);
export const dasClient = (url: string, creds: Partial<RPCClient.Config> = {}): RPCClient => popClient(url, '2020-01-16', creds);

/** An error thrown by pop-core for a non-success Code. */
export interface PopError extends Error {
  code: string;
  data: Record<string, unknown>;
  entry: { response: { statusCode: number } };
}

/** The error `p` rejects with (pop-core's or the Tencent SDK's); fails the test when `p` resolves. */
async function rejection<E>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected the call to fail');
}

export const popError = (p: Promise<unknown>): Promise<PopError> => rejection<PopError>(p);

const MongoClient = tencentcloud.mongodb.v20190725.Client;
export type MongoClientType = InstanceType<typeof MongoClient>;

const localAgent = (): http.Agent => new http.Agent({ keepAlive: true });

/** The SDK signs endpoint.split('.')[0]: with a bare IP that is "127". */
export function mongoClientByIp(port: number, creds = TENCENT, region = 'ap-guangzhou'): MongoClientType {
  return new MongoClient({
    credential: creds,
    region,
    profile: { httpProfile: { endpoint: `127.0.0.1:${port}`, protocol: 'http://', agent: localAgent() } },
  });
}

/** Keeps the real service name "mongodb" (or another host's) by resolving the host name to 127.0.0.1. */
export function mongoClientByName(port: number, creds = TENCENT, region = 'ap-guangzhou', reqMethod: 'POST' | 'GET' = 'POST', host = 'mongodb.tencentcloudapi.com'): MongoClientType {
  const agent = new http.Agent({
    keepAlive: true,
    lookup: ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
      opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) as never,
  });
  return new MongoClient({
    credential: creds,
    region,
    profile: { httpProfile: { endpoint: `${host}:${port}`, protocol: 'http://', agent, reqMethod } },
  });
}

export interface TencentSdkError extends Error {
  code?: string;
  requestId?: string;
  traceId?: string;
}

export const tencentError = (p: Promise<unknown>): Promise<TencentSdkError> => rejection<TencentSdkError>(p);

export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function adminGet<T>(baseUrl: string, p: string): Promise<T> {
  const r = await rawRequest(`${baseUrl}/_emulator/${p}`);
  return JSON.parse(r.body) as T;
}

export async function adminPost<T>(baseUrl: string, p: string, body: unknown): Promise<{ status: number; json: T }> {
  const r = await rawRequest(`${baseUrl}/_emulator/${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: JSON.parse(r.body) as T };
}
