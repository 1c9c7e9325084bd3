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
  /**
   * Told the AccessKey ID the request is signed with, before it is sent (Alibaba; other providers do not call it):
   * what the cloud answers may be bound to that key (an ApsaraMQ token names it at sign-in).
   */
  onSigned?: (accessKeyId: string) => void;
}

/** What a transport's refreshing credentials offer the client: a refresh when the cloud refuses the held token as expired. */
export interface RefreshableCredentials {
  /** Changes whenever a new credential is held; read before a call, passed to refreshNow() if the call is refused. */
  readonly generation: number;
  /** Refreshes unless a newer credential than `usedGeneration` is already held; concurrent calls share one fetch. */
  refreshNow(usedGeneration?: number): Promise<void>;
}

export interface CloudTransport {
  readonly provider: 'aliyun' | 'tencentcloud';
  /** Present when the credentials refresh: the client refreshes them once when the cloud says they expired. */
  readonly credentials?: RefreshableCredentials;
  /** Resolves with the parsed JSON body of a successful call; rejects with a CloudError. */
  call(req: CallRequest): Promise<unknown>;
  close?(): void;
}
