// From one GetRedisAllSession answer to bounded aggregates (per node, per source IP capped, per command capped, idle
// over thresholds, buffers, pub/sub, MULTI, blocked, oldest age) and their families.
import { DeclaredFamilyBuilder, singleSample, type FamilyDecl } from '../../metrics/declare';
import { formatValue, type MetricFamily } from '../../metrics/family';
import { addTo, foldTopN, OTHER } from '../shared/top-n';
import type { RedisSessionsData } from './parse';
import * as F from './families';

/** Label value for a session without a node, client IP or command. */
const UNKNOWN = 'unknown';
const MAX_LABEL_CHARS = 128;

function labelValue(v: string): string {
  const t = v.trim();
  return t === '' ? UNKNOWN : t.length > MAX_LABEL_CHARS ? t.slice(0, MAX_LABEL_CHARS) : t;
}

/** Everything the job exports for one instance, computed from one answer; exported for tests. */
export interface RedisAggregates {
  total: number;
  listed: number;
  nodes: Map<string, number>;
  /** Sessions per kept source IP, plus OTHER when some were folded. */
  clientSessions: Map<string, number>;
  foldedIps: number;
  commands: Map<string, number>;
  idle: Array<[number, number]>;
  outputBuffer: number;
  /** Same keys as clientSessions (plus OTHER when a listed session's IP is not a kept one). */
  clientOutputBuffer: Map<string, number>;
  clientQueryBuffer: Map<string, number>;
  pubsub: number;
  multi: number;
  blocked: number;
  oldestAge: number;
}

export function aggregateRedisSessions(data: RedisSessionsData, opts: { maxClientIps: number; maxCommands: number; idleThresholds: readonly number[] }): RedisAggregates {
  const nodes = new Map<string, number>();
  const commandCounts = new Map<string, number>();
  let outputBuffer = 0;
  let pubsub = 0;
  let multi = 0;
  let blocked = 0;
  let oldestAge = 0;
  const thresholds = [...new Set(opts.idleThresholds)].sort((a, b) => a - b);
  const idleCounts = new Array<number>(thresholds.length).fill(0);

  // Per-IP session counts come from SourceStats (every session, listed or not); without it, from the list.
  const perIp = new Map<string, number>();
  if (data.sourceStats) for (const s of data.sourceStats) addTo(perIp, labelValue(s.key), s.count);
  else for (const s of data.sessions) addTo(perIp, labelValue(s.clientIp), 1);
  const folded = foldTopN(perIp, opts.maxClientIps);
  const clientSessions = new Map(folded.kept);
  if (folded.foldedCount > 0) addTo(clientSessions, OTHER, folded.otherValue);
  // Buffers use the same kept IPs, so every client_ip series of the three families means the same clients.
  const clientOutputBuffer = new Map<string, number>();
  const clientQueryBuffer = new Map<string, number>();
  for (const ip of clientSessions.keys()) {
    clientOutputBuffer.set(ip, 0);
    clientQueryBuffer.set(ip, 0);
  }

  for (const s of data.sessions) {
    addTo(nodes, labelValue(s.nodeId), 1);
    addTo(commandCounts, labelValue(s.cmd).toLowerCase(), 1);
    for (let t = 0; t < thresholds.length; t++) if (s.idle >= thresholds[t]) idleCounts[t]++;
    outputBuffer += s.omem;
    let ip = labelValue(s.clientIp);
    if (ip === OTHER || !clientSessions.has(ip)) ip = OTHER;
    addTo(clientOutputBuffer, ip, s.omem);
    addTo(clientQueryBuffer, ip, s.qbuf);
    if (s.sub > 0 || s.psub > 0) pubsub++;
    // CLIENT LIST's multi is -1 outside MULTI and the number of queued commands (from 0) inside.
    if (s.multi >= 0) multi++;
    if (s.flags.includes('b')) blocked++;
    if (s.age > oldestAge) oldestAge = s.age;
  }
  const cmdFolded = foldTopN(commandCounts, opts.maxCommands);
  const commands = new Map(cmdFolded.kept);
  if (cmdFolded.foldedCount > 0) addTo(commands, OTHER, cmdFolded.otherValue);

  return {
    total: data.total,
    listed: data.sessions.length,
    nodes,
    clientSessions,
    foldedIps: folded.foldedCount,
    commands,
    idle: thresholds.map((t, i) => [t, idleCounts[i]]),
    outputBuffer,
    clientOutputBuffer,
    clientQueryBuffer,
    pubsub,
    multi,
    blocked,
    oldestAge,
  };
}

function sortedEntries(m: ReadonlyMap<string, number>): Array<[string, number]> {
  // Stable output order: by label value, "other" last.
  return [...m.entries()].sort(([a], [b]) => (a === OTHER ? 1 : b === OTHER ? -1 : a < b ? -1 : a > b ? 1 : 0));
}

/** The metric families of one instance, in the declared layout, static labels last. */
export function renderRedisFamilies(instanceId: string, agg: RedisAggregates, foldedTotal: number, staticLabels: string): MetricFamily[] {
  const inst = { instance_id: instanceId };
  const single = (decl: FamilyDecl<'instance_id'>, value: number) => singleSample(decl, inst, value, staticLabels);
  const byLabel = <L extends 'node_id' | 'client_ip' | 'command'>(decl: FamilyDecl<'instance_id' | L>, label: L, values: ReadonlyMap<string, number>) => {
    const b = new DeclaredFamilyBuilder(decl, staticLabels);
    for (const [k, v] of sortedEntries(values)) b.sample({ ...inst, [label]: k } as Record<'instance_id' | L, string>, v);
    return b.build();
  };
  const idle = new DeclaredFamilyBuilder(F.IDLE_SESSIONS, staticLabels);
  for (const [t, n] of agg.idle) idle.sample({ ...inst, idle_seconds_min: formatValue(t) }, n);

  return [
    single(F.SESSIONS, agg.total),
    single(F.LISTED_SESSIONS, agg.listed),
    byLabel(F.NODE_SESSIONS, 'node_id', agg.nodes),
    byLabel(F.CLIENT_SESSIONS, 'client_ip', agg.clientSessions),
    single(F.CLIENT_IPS_FOLDED, foldedTotal),
    byLabel(F.COMMAND_SESSIONS, 'command', agg.commands),
    idle.build(),
    single(F.OUTPUT_BUFFER, agg.outputBuffer),
    byLabel(F.CLIENT_OUTPUT_BUFFER, 'client_ip', agg.clientOutputBuffer),
    byLabel(F.CLIENT_QUERY_BUFFER, 'client_ip', agg.clientQueryBuffer),
    single(F.PUBSUB_SESSIONS, agg.pubsub),
    single(F.MULTI_SESSIONS, agg.multi),
    single(F.BLOCKED_SESSIONS, agg.blocked),
    single(F.OLDEST_SESSION_AGE, agg.oldestAge),
  ];
}
