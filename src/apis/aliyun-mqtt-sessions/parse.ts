// The two session queries' answers: BatchQuerySessionByClientIds' OnlineStatusList and QuerySessionByClientId's
// OnlineStatus (booleans, sometimes as strings).
export function parseBatchResponse(body: unknown, requested: readonly string[]): boolean[] {
  const list = (body as { OnlineStatusList?: unknown })?.OnlineStatusList;
  if (!Array.isArray(list)) throw new Error('OnlineStatusList is missing or not a list');
  const byId = new Map<string, boolean>();
  for (const item of list) {
    const { ClientId, OnlineStatus } = (item ?? {}) as { ClientId?: unknown; OnlineStatus?: unknown };
    if (typeof ClientId !== 'string') throw new Error('an OnlineStatusList entry has no ClientId');
    byId.set(ClientId, toBool(OnlineStatus, `OnlineStatus of ${ClientId}`));
  }
  return requested.map((id) => {
    const v = byId.get(id);
    if (v === undefined) throw new Error(`the answer does not include client ${id}`);
    return v;
  });
}

export function parseSingleResponse(body: unknown): boolean {
  return toBool((body as { OnlineStatus?: unknown })?.OnlineStatus, 'OnlineStatus');
}

function toBool(v: unknown, what: string): boolean {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new Error(`${what} is not a boolean`);
}
