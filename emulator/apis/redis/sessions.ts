// Sessions of an emulated ApsaraDB for Redis instance, synthetic or read from a real Redis, as the DAS Data object.
import { createRng, hashInts, hashString, intBetween } from '../../core/prng';
import { readRedisSessions, type DasSession } from './client-list';
import type { RedisInstanceConfig } from './scenario';

export interface DasSourceStat {
  Key: string;
  /** A string in DAS answers. */
  Count: string;
  Ids: number[];
}

export interface DasData {
  Timestamp: number;
  Total: number;
  Sessions: DasSession[];
  SourceStats: DasSourceStat[];
}

function nodeIds(cfg: RedisInstanceConfig): string[] {
  if (Array.isArray(cfg.nodes)) return cfg.nodes;
  return Array.from({ length: cfg.nodes }, (_, k) => `${cfg.instance_id}-proxy-${k + 1}#${16790001 + k}`);
}

function clientIps(cfg: RedisInstanceConfig): string[] {
  if (Array.isArray(cfg.client_ips)) return cfg.client_ips;
  return Array.from({ length: cfg.client_ips }, (_, j) => `172.16.${Math.floor(j / 250)}.${(j % 250) + 1}`);
}

function pickWeighted<T>(u: number, items: [T, number][]): T {
  const total = items.reduce((a, [, w]) => a + w, 0);
  let x = u * total;
  for (const [item, w] of items) {
    if (x < w) return item;
    x -= w;
  }
  return (items[items.length - 1] as [T, number])[0];
}

/** Deterministic sessions: a few source IPs dominate, idle times follow the configured mixture. */
function syntheticSessions(cfg: RedisInstanceConfig, scenarioSeed: number): DasSession[] {
  const rng = createRng(hashInts(scenarioSeed, hashString(`redis/${cfg.instance_id}`)));
  const nodes = nodeIds(cfg);
  const ips = clientIps(cfg);
  const commands = Object.entries(cfg.commands);
  const idleBuckets = cfg.idle.map((b): [{ min_s: number; max_s: number }, number] => [b, b.weight]);
  const sessions: DasSession[] = [];
  let id = 9_000_000 + Math.floor(rng() * 1_000_000);
  for (let i = 0; i < cfg.sessions; i++) {
    id += 1 + Math.floor(rng() * 50);
    const ip = ips[Math.floor(rng() * rng() * ips.length)] as string;
    const bucket = pickWeighted(rng(), idleBuckets);
    const idle = intBetween(rng(), bucket.min_s, bucket.max_s);
    const omem = intBetween(rng(), cfg.omem_bytes.min, cfg.omem_bytes.max);
    const qbuf = intBetween(rng(), cfg.qbuf_bytes.min, cfg.qbuf_bytes.max);
    const kind = rng();
    let flags = 'N';
    let cmd = pickWeighted(rng(), commands);
    let sub = 0;
    let psub = 0;
    let multi = -1;
    if (kind < cfg.blocked_ratio) {
      flags = 'b';
      cmd = 'BLPOP';
    } else if (kind < cfg.blocked_ratio + cfg.pubsub_ratio) {
      flags = 'P';
      cmd = 'SUBSCRIBE';
      sub = intBetween(rng(), 1, 3);
      psub = rng() < 0.3 ? 1 : 0;
    } else if (kind < cfg.blocked_ratio + cfg.pubsub_ratio + cfg.multi_ratio) {
      flags = 'x';
      multi = intBetween(rng(), 1, 5);
    }
    sessions.push({
      Sub: sub,
      Psub: psub,
      Idle: idle,
      Flags: flags,
      Oll: omem > 0 ? 1 : 0,
      QbufFree: qbuf > 0 ? Math.max(0, 32_768 - qbuf) : 0,
      Multi: multi,
      Omem: omem,
      Qbuf: qbuf,
      Name: rng() < 0.3 ? `app-${intBetween(rng(), 1, 9)}` : '',
      Obl: 0,
      Client: ip,
      Cmd: cmd,
      Id: id,
      Addr: `${ip}:${intBetween(rng(), 1024, 65_535)}`,
      NodeId: nodes[Math.floor(rng() * nodes.length)] as string,
      Age: String(idle + intBetween(rng(), 0, 86_400)),
      Db: rng() < 0.1 ? 1 : 0,
      Events: omem > 0 ? 'rw' : 'r',
      Fd: 20 + i,
      ClientDesc: '',
    });
  }
  return sessions;
}

/**
 * `Total` counts every session plus `total_extra`; `Sessions` lists at most `max_listed` of them;
 * `SourceStats` aggregates every session, listed or not (most sessions first).
 */
function dasData(all: DasSession[], cfg: RedisInstanceConfig, nowMs: number): DasData {
  const bySource = new Map<string, number[]>();
  for (const s of all) {
    const ids = bySource.get(s.Client);
    if (ids === undefined) bySource.set(s.Client, [s.Id]);
    else ids.push(s.Id);
  }
  const SourceStats = [...bySource]
    .map(([Key, Ids]) => ({ Key, Count: String(Ids.length), Ids }))
    .sort((a, b) => b.Ids.length - a.Ids.length || (a.Key < b.Key ? -1 : a.Key > b.Key ? 1 : 0));
  return {
    Timestamp: nowMs,
    Total: all.length + cfg.total_extra,
    Sessions: cfg.max_listed === undefined ? all : all.slice(0, cfg.max_listed),
    SourceStats,
  };
}

export class RedisInstanceState {
  readonly id: string;
  private readonly synthetic: DasSession[];

  constructor(
    readonly config: RedisInstanceConfig,
    scenarioSeed: number,
  ) {
    this.id = config.instance_id;
    this.synthetic = config.redis === undefined ? syntheticSessions(config, scenarioSeed) : [];
  }

  private async sessions(): Promise<DasSession[]> {
    const real = this.config.redis;
    if (real === undefined) return this.synthetic;
    return readRedisSessions(real, real.node_id ?? `${this.id}-db-0`);
  }

  async data(nowMs: number): Promise<DasData> {
    return dasData(await this.sessions(), this.config, nowMs);
  }
}
