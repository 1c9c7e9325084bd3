// One DescribeClientConnections answer: Clients (IP, Count, InternalService) and TotalCount, validated.
export interface ClientRecord {
  ip: string;
  count: number;
  internal: boolean;
}

export interface Page {
  clients: ClientRecord[];
  /** The answer's TotalCount; undefined when it has none (one of the documentation's samples). */
  totalCount: number | undefined;
}

/** Validates one DescribeClientConnections answer; a throw becomes a MalformedResponse. */
export function parseClientConnections(body: unknown): Page {
  const b = body as { Clients?: unknown; TotalCount?: unknown } | null;
  if (!b || typeof b !== 'object') throw new Error('the answer is not an object');
  const total = b.TotalCount ?? undefined;
  if (total !== undefined && (typeof total !== 'number' || !Number.isInteger(total) || total < 0)) throw new Error('TotalCount is not a non-negative integer');
  const raw = b.Clients ?? [];
  if (!Array.isArray(raw)) throw new Error('Clients is not a list');
  const clients: ClientRecord[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const c = (raw[i] ?? {}) as { IP?: unknown; Count?: unknown; InternalService?: unknown };
    if (typeof c.IP !== 'string' || c.IP === '') throw new Error(`Clients[${i}] has no IP`);
    if (typeof c.Count !== 'number' || !Number.isFinite(c.Count) || c.Count < 0) throw new Error(`Clients[${i}] (${c.IP}) has no valid Count`);
    clients[i] = { ip: c.IP, count: c.Count, internal: c.InternalService === true };
  }
  return { clients, totalCount: total };
}

