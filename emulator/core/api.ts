// The contract between the emulator's core, its protocol front ends (Alibaba POP, Tencent TC3) and the emulated
// products behind them (apis/<product>/, one registry line each).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { Credentials, Scenario } from './scenario';

/** A documented API error; the front end wraps it in its provider's envelope. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Alibaba only: Tencent answers every error with HTTP 200. */
    readonly httpStatus = 400,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiAnswer {
  body: Record<string, unknown>;
  /** Set when the body is a failure answered at HTTP 200 (DAS business errors), for the stats. */
  errorCode?: string;
  /** Runs once the answer has been sent, e.g. the page-to-page mutation of a MongoDB instance. */
  afterSend?: () => void;
}

export interface AliyunCall {
  account: string;
  /** The AccessKey ID that signed the call (a scenario key, or an issued `STS.` one). */
  accessKeyId: string;
  params: Map<string, string>;
  requestId: string;
  nowMs: number;
}

export interface TencentCall {
  account: string;
  /** JSON body values, or strings when the call came as a GET query. */
  params: Record<string, unknown>;
  paramsFromQuery: boolean;
  region: string | undefined;
  requestId: string;
  nowMs: number;
}

export interface AliyunApi {
  name: string;
  version: string;
  handle(call: AliyunCall): ApiAnswer | Promise<ApiAnswer>;
  /** The code a call over the API's rate limit gets (its status from the error catalog); default `Throttling.User`, the gateway's. */
  throttleCode?: string;
  /** Size of the batch a call carries, for the `largest_batch` statistic. */
  batchSize?(params: Map<string, string>): number;
  /** How an injected error code looks when the product does not answer it in the gateway's error body. */
  injectedError?(code: string, requestId: string): { status: number; body: Record<string, unknown> } | undefined;
}

export interface TencentApi {
  name: string;
  version: string;
  handle(call: TencentCall): ApiAnswer | Promise<ApiAnswer>;
}

/** One emulated API: its name, its version and its documented QPS (the emulator's default rate limit). */
export interface ApiSpec {
  name: string;
  version: string;
  qps: number;
}

export interface ProductEnv {
  scenario: Scenario;
  credentials: Credentials;
  now: () => number;
  /** Hooks a test or embedding passes to startEmulator, for the product that knows them. */
  hooks: Readonly<Record<string, unknown>>;
}

/** A started product: its handlers, its ground truth, and what else tests and the admin API may ask of it. */
export interface ProductRuntime {
  aliyun?: AliyunApi[];
  tencent?: TencentApi[];
  /** Per instance, what a perfect exporter would report now. */
  truth(nowMs: number): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Answers the product's own /_emulator/* routes; resolves false for a path that is not its. */
  admin?(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<boolean>;
  close?(): Promise<void>;
}

/** An emulated product (one cloud service): the scenario keys it owns, its APIs, and how it starts. */
export interface EmulatedProduct {
  provider: 'aliyun' | 'tencentcloud';
  /** Tencent: the service name in the TC3 credential scope (`mongodb`). */
  service?: string;
  /** The key of its ground truth in /_emulator/truth. */
  truthKey: string;
  /**
   * Calls per second one source IP may send to all of the product's APIs together; beyond it the cloud blocks the IP
   * (ApsaraMQ for MQTT: 300). The scenario's `source_ip_limits` overrides it by truth key.
   */
  sourceIpQps?: number;
  apis: readonly ApiSpec[];
  /** Top-level scenario keys it owns, with their schemas (defaults applied, unknown keys refused). */
  scenario: z.ZodRawShape;
  /** The error codes its APIs document, with their HTTP status and message (Alibaba; injected faults use them). */
  errors?: Readonly<Record<string, { status: number; message: string }>>;
  /** Cross-checks of its keys against the rest of the scenario. */
  check?(scenario: Scenario, ctx: z.RefinementCtx): void;
  start(env: ProductEnv): Promise<ProductRuntime>;
}

