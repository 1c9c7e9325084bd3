// The two session queries' answers: BatchQuerySessionByClientIds' OnlineStatusList and QuerySessionByClientId's
// OnlineStatus (booleans, sometimes as strings).
//
// A partial answer is data, not a malformed body: a requested client ID the answer leaves out (or an entry, or a single
// answer, without OnlineStatus) has no status this poll, and an entry for a client ID nobody asked for is ignored. The
// job counts both. Only a body whose shape is wrong (no list, an entry without ClientId, a status that is not a
// boolean) is malformed, and retried.

/** A client's status in one answer: undefined when the answer gave none. */
export type AnsweredStatus = boolean | undefined;

export interface BatchAnswer {
  /** Per requested client ID, in request order. */
  status: AnsweredStatus[];
  /** Entries for client IDs that were not requested (ignored). */
  unexpected: number;
}

export function parseBatchResponse(body: unknown, requested: readonly string[]): BatchAnswer {
  const list = (body as { OnlineStatusList?: unknown })?.OnlineStatusList;
  if (!Array.isArray(list)) throw new Error('OnlineStatusList is missing or not a list');
  const wanted = new Set(requested);
  const byId = new Map<string, AnsweredStatus>();
  let unexpected = 0;
  for (const item of list) {
    const { ClientId, OnlineStatus } = (item ?? {}) as { ClientId?: unknown; OnlineStatus?: unknown };
    if (typeof ClientId !== 'string') throw new Error('an OnlineStatusList entry has no ClientId');
    const status = toStatus(OnlineStatus, `OnlineStatus of ${ClientId}`);
    if (!wanted.has(ClientId)) unexpected++;
    else if (status !== undefined || !byId.has(ClientId)) byId.set(ClientId, status);
  }
  return { status: requested.map((id) => byId.get(id)), unexpected };
}

export function parseSingleResponse(body: unknown): AnsweredStatus {
  if (body === null || typeof body !== 'object') throw new Error('the answer is not an object');
  return toStatus((body as { OnlineStatus?: unknown }).OnlineStatus, 'OnlineStatus');
}

function toStatus(v: unknown, what: string): AnsweredStatus {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  if (v === undefined || v === null) return undefined;
  throw new Error(`${what} is not a boolean`);
}
