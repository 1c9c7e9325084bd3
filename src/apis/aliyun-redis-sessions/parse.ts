// Parses a DAS GetRedisAllSession (2020-01-16) answer into typed sessions and source statistics.
// Tolerant of the type quirks of real answers: Age and SourceStats[].Count are strings, Code is a number or a
// string, Success a boolean or a string, any number may arrive as a numeric string (or, above 15 digits, as a
// json-bigint BigNumber), and absent (null) fields take CLIENT LIST's neutral values. Strict about anything else:
// a value that is present but not what the field holds is an error naming the field and its index, which the API
// client turns into a MalformedResponse. Business failures (`Success: false`) are the Alibaba provider's to report.

export interface RedisSession {
  id: number;
  nodeId: string;
  /** Client IP: `Client`, or the IP part of `Addr` when Client is empty. */
  clientIp: string;
  addr: string;
  name: string;
  /** Last command as reported (CLIENT LIST's cmd, e.g. "PING", "client|list", "NULL"). */
  cmd: string;
  idle: number;
  age: number;
  flags: string;
  sub: number;
  psub: number;
  /** Commands queued in MULTI; -1 outside a transaction. */
  multi: number;
  omem: number;
  qbuf: number;
  qbufFree: number;
  obl: number;
  oll: number;
  db: number;
  fd: number;
  events: string;
  clientDesc: string;
}

export interface RedisSourceStat {
  key: string;
  count: number;
  ids: number[];
}

export interface RedisSessionsData {
  /** Milliseconds since the epoch, when given. */
  timestamp?: number;
  /** Sessions on the instance; may exceed `sessions.length` (DAS lists only part of them). */
  total: number;
  sessions: RedisSession[];
  /** Per source IP over all sessions, listed or not; undefined when the answer has no SourceStats. */
  sourceStats?: RedisSourceStat[];
}


type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** json-bigint's BigNumber (numbers above 15 digits): an object with isBigNumber and toString(). */
function bigNumberText(v: unknown): string | undefined {
  if (isObj(v) && (v as { isBigNumber?: unknown }).isBigNumber === true && typeof v.toString === 'function') return v.toString();
  return undefined;
}

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

interface NumberRule {
  min?: number;
  integer?: boolean;
}

/** A number given as a number, a numeric string or a BigNumber; `fallback` when absent (undefined or null). */
function toNumber(v: unknown, field: string, fallback: number | undefined, rule: NumberRule = {}): number {
  let n: number;
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new Error(`${field} is missing`);
    return fallback;
  }
  if (typeof v === 'number') n = v;
  else {
    const text = typeof v === 'string' ? v.trim() : bigNumberText(v);
    if (text === undefined || !NUMERIC.test(text)) throw new Error(`${field}: ${describe(v)} is not a number`);
    n = Number(text);
  }
  if (!Number.isFinite(n)) throw new Error(`${field}: ${describe(v)} is not a finite number`);
  if (rule.integer && !Number.isInteger(n)) throw new Error(`${field}: ${describe(v)} is not a whole number`);
  if (rule.min !== undefined && n < rule.min) throw new Error(`${field}: ${describe(v)} is below ${rule.min}`);
  return n;
}

/** A string, or a number shown as one; `fallback` when absent. */
function toStr(v: unknown, field: string, fallback = ''): string {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new Error(`${field}: ${describe(v)} is not a string`);
}

/** "10.0.0.1:5000" → "10.0.0.1"; "[::1]:5000" → "::1"; a bare address or a Unix socket path stays as it is. */
export function ipOfAddr(addr: string): string {
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    return end < 0 ? addr : addr.slice(1, end);
  }
  const colon = addr.lastIndexOf(':');
  // More than one colon without brackets is a bare IPv6 address.
  if (colon < 0 || addr.indexOf(':') !== colon) return addr;
  return addr.slice(0, colon);
}

const count = { min: 0, integer: true } as const;
const bytes = { min: 0 } as const;

function parseRedisSession(raw: unknown, field: string): RedisSession {
  if (!isObj(raw)) throw new Error(`${field}: ${describe(raw)} is not an object`);
  const f = (k: string) => `${field}.${k}`;
  const addr = toStr(raw.Addr, f('Addr'));
  const client = toStr(raw.Client, f('Client')).trim();
  return {
    id: toNumber(raw.Id, f('Id'), 0, { integer: true }),
    nodeId: toStr(raw.NodeId, f('NodeId')),
    clientIp: client || ipOfAddr(addr.trim()),
    addr,
    name: toStr(raw.Name, f('Name')),
    cmd: toStr(raw.Cmd, f('Cmd')),
    idle: toNumber(raw.Idle, f('Idle'), 0, { min: 0 }),
    age: toNumber(raw.Age, f('Age'), 0, { min: 0 }),
    flags: toStr(raw.Flags, f('Flags')),
    sub: toNumber(raw.Sub, f('Sub'), 0, count),
    psub: toNumber(raw.Psub, f('Psub'), 0, count),
    multi: toNumber(raw.Multi, f('Multi'), -1, { min: -1, integer: true }),
    omem: toNumber(raw.Omem, f('Omem'), 0, bytes),
    qbuf: toNumber(raw.Qbuf, f('Qbuf'), 0, bytes),
    qbufFree: toNumber(raw.QbufFree, f('QbufFree'), 0, bytes),
    obl: toNumber(raw.Obl, f('Obl'), 0, bytes),
    oll: toNumber(raw.Oll, f('Oll'), 0, count),
    db: toNumber(raw.Db, f('Db'), 0, count),
    // Lua and module pseudo-clients report fd=-1.
    fd: toNumber(raw.Fd, f('Fd'), -1, { min: -1, integer: true }),
    events: toStr(raw.Events, f('Events')),
    clientDesc: toStr(raw.ClientDesc, f('ClientDesc')),
  };
}

function parseSourceStat(raw: unknown, field: string): RedisSourceStat {
  if (!isObj(raw)) throw new Error(`${field}: ${describe(raw)} is not an object`);
  const key = toStr(raw.Key, `${field}.Key`).trim();
  let ids: number[] = [];
  if (raw.Ids !== undefined && raw.Ids !== null) {
    if (!Array.isArray(raw.Ids)) throw new Error(`${field}.Ids: ${describe(raw.Ids)} is not a list`);
    ids = raw.Ids.map((v, j) => toNumber(v, `${field}.Ids[${j}]`, undefined, { integer: true }));
  }
  // Count is a string in DAS answers; without it, the listed IDs are the count.
  const n = raw.Count === undefined || raw.Count === null ? ids.length : toNumber(raw.Count, `${field}.Count`, undefined, count);
  return { key, count: n, ids };
}

/** The Data object of a successful answer. */
function parseRedisSessionsData(data: unknown, field = 'Data'): RedisSessionsData {
  if (!isObj(data)) throw new Error(`${field}: ${describe(data)} is not an object`);
  const rawSessions = data.Sessions ?? [];
  if (!Array.isArray(rawSessions)) throw new Error(`${field}.Sessions: ${describe(rawSessions)} is not a list`);
  const sessions = rawSessions.map((s, i) => parseRedisSession(s, `${field}.Sessions[${i}]`));
  let sourceStats: RedisSourceStat[] | undefined;
  if (data.SourceStats !== undefined && data.SourceStats !== null) {
    if (!Array.isArray(data.SourceStats)) throw new Error(`${field}.SourceStats: ${describe(data.SourceStats)} is not a list`);
    sourceStats = data.SourceStats.map((s, i) => parseSourceStat(s, `${field}.SourceStats[${i}]`));
  }
  // Total counts every session; the list may be cut short. Without Total, the list is all we know.
  const total = toNumber(data.Total, `${field}.Total`, sessions.length, count);
  const timestamp = data.Timestamp === undefined || data.Timestamp === null ? undefined : toNumber(data.Timestamp, `${field}.Timestamp`, undefined, { min: 0 });
  return { timestamp, total, sessions, sourceStats };
}

/**
 * The whole response body of a successful answer (business failures, `Success: false`, are turned into CloudErrors
 * by the Alibaba provider before this runs).
 */
export function parseGetRedisAllSession(body: unknown): RedisSessionsData {
  if (!isObj(body)) throw new Error(`the body is ${describe(body)}, not an object`);
  if (body.Data === undefined || body.Data === null) throw new Error('Data is missing from a successful answer');
  return parseRedisSessionsData(body.Data);
}
