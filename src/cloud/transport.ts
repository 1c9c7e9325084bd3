// The narrow interface every SDK adapter implements: one signed request, normalised errors, nothing else.
export interface CallRequest {
  api: string;
  params: Record<string, unknown>;
  /** The region the call is about; providers that sign it send it (Tencent's X-TC-Region), others ignore it. */
  region?: string;
  /** Bound of the whole exchange (see http-guard.ts). */
  timeoutMs: number;
  /** The run's signal: an abort ends the exchange at once. */
  signal?: AbortSignal;
}

export interface CloudTransport {
  readonly provider: 'aliyun' | 'tencentcloud';
  /** Resolves with the parsed JSON body of a successful call; rejects with a CloudError. */
  call(req: CallRequest): Promise<unknown>;
  close?(): void;
}
