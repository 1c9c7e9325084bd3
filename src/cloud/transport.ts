// The narrow interface every SDK adapter implements: one signed request, normalised errors, nothing else.
export interface CallRequest {
  api: string;
  params: Record<string, unknown>;
  timeoutMs: number;
}

export interface CloudTransport {
  readonly provider: 'aliyun' | 'tencentcloud';
  /** Resolves with the parsed JSON body of a successful call; rejects with a CloudError. */
  call(req: CallRequest): Promise<unknown>;
  close?(): void;
}
