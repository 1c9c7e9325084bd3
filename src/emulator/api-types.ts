// The contract between the protocol front ends (Alibaba POP, Tencent TC3) and the emulated APIs behind them.
import type { ApiName } from './scenario';

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
  name: ApiName;
  version: string;
  handle(call: AliyunCall): ApiAnswer | Promise<ApiAnswer>;
  /** Size of the batch a call carries, for the `largest_batch` statistic. */
  batchSize?(params: Map<string, string>): number;
}

export interface TencentApi {
  name: ApiName;
  version: string;
  handle(call: TencentCall): ApiAnswer | Promise<ApiAnswer>;
}

export const DEFAULT_QPS: Record<ApiName, number> = {
  BatchQuerySessionByClientIds: 100,
  QuerySessionByClientId: 500,
  SendMessage: 1000,
  DescribeClientConnections: 5,
  GetRedisAllSession: 10,
};
