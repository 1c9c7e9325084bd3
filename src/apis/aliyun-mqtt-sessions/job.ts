// One aliyun_mqtt_sessions job: loads the inventory, asks the cloud which devices are online (batches of 10, or one
// by one where the batch API is not supported), and renders per-device lines, per-group counts and transitions.
// What a device without a status in the answer becomes ("no value this poll") is stated in docs.ts.
import { CloudError } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/client';
import { NO_VALUE } from '../../metrics/binary-gauge-lines';
import { DeclaredFamilyBuilder, singleSample } from '../../metrics/declare';
import type { MetricFamily } from '../../metrics/family';
import type { Job, JobContext, JobHandover, JobRunResult, RunContext } from '../../core/job-type';
import { mqttEndpoint, MQTT_API_VERSION } from '../aliyun-mqtt/product';
import { runPool } from '../shared/pool';
import { DeviceLines } from './device-lines';
import { decodeCounters, decodeStatus, encodeCounters, encodeStatus, COUNTERS_SECTION, STATUS_SECTION } from './handover';
import { CLIENTS, INVENTORY_ENTRIES, INVENTORY_INVALID, STATUS_MISSING, STATUS_UNEXPECTED, TRANSITIONS } from './families';
import { InventoryLoader, shardOf, type Inventory } from './inventory';
import { parseBatchResponse, parseSingleResponse, type AnsweredStatus } from './parse';
import { BATCH_API, BATCH_SIZE, inventoryFile, SINGLE_API, type MqttSessionsConfig } from './config';

const STATUS_OFFLINE = 0;
const STATUS_ONLINE = 1;
/** No status in this poll's answer; the per-device lines leave such a device out. */
const STATUS_NO_ANSWER = NO_VALUE;

function statusOf(answer: AnsweredStatus): number {
  return answer === undefined ? STATUS_NO_ANSWER : answer ? STATUS_ONLINE : STATUS_OFFLINE;
}

/** What one poll learnt: a status per inventory entry, and how many answer entries were not asked for. */
interface PollResult {
  status: Uint8Array;
  unexpected: number;
}

export class MqttSessionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly inventory: InventoryLoader;
  private readonly where: { region: string; instance_id: string };
  private useBatch: boolean;
  /** The last successful poll's inventory and, per device, its last known status (STATUS_NO_ANSWER if never known). */
  private previous: { inventory: Inventory; known: Uint8Array } | undefined;
  private readonly deviceLines: DeviceLines;
  private readonly transitions = new Map<string, { online: number; offline: number }>();
  private readonly missing = new Map<string, number>();
  private unexpected = 0;
  /** The last successful poll's statuses (of `previous.inventory`), for the handover. */
  private lastStatus: Uint8Array | undefined;
  /** Sharded: this replica's part of the last inventory, by inventory key and shard. */
  private shardCache: { key: string; inventory: Inventory } | undefined;
  readonly handover: JobHandover = {
    rebuildsFamilies: true,
    save: () => this.saveState(),
    restore: (sections) => this.restoreState(sections),
  };

  constructor(
    private readonly cfg: MqttSessionsConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [cfg.instance_id];
    this.caller = ctx.accounts.caller(cfg.account, mqttEndpoint(cfg), MQTT_API_VERSION);
    this.inventory = new InventoryLoader(cfg.client_ids, inventoryFile(cfg, ctx.configDir), ctx.logger);
    this.where = { region: cfg.region, instance_id: cfg.instance_id };
    this.deviceLines = new DeviceLines(this.where, ctx.staticLabels);
    this.useBatch = cfg.use_batch_api;
  }

  async run(run: RunContext): Promise<JobRunResult> {
    const instanceId = this.cfg.instance_id;
    let inv: Inventory;
    try {
      inv = await this.inventory.load();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason = `cannot read client_ids_file ${this.cfg.client_ids_file}: ${e.code ?? e.message}`;
      return { targets: [{ instanceId, ok: false, error: new Error(reason) }], blocked: reason };
    }
    const jobMetrics = { [INVENTORY_ENTRIES.name]: inv.size, [INVENTORY_INVALID.name]: inv.invalid };
    if (run.shard) inv = await this.shardInventory(inv, run.shard);
    try {
      const result = await this.poll(inv, run);
      this.unexpected += result.unexpected;
      this.countPoll(inv, result.status);
      const families = await this.render(inv, result.status);
      return { targets: [{ instanceId, ok: true, families }], jobMetrics, inventorySize: inv.size };
    } catch (err) {
      return { targets: [{ instanceId, ok: false, error: err as Error }], jobMetrics, inventorySize: inv.size };
    }
  }

  /** The devices of this replica's shard (sharded cluster), computed once per inventory and shard assignment. */
  private async shardInventory(inv: Inventory, shard: NonNullable<RunContext['shard']>): Promise<Inventory> {
    const key = `${inv.key}/${shard.id}`;
    if (this.shardCache?.key !== key) this.shardCache = { key, inventory: await shardOf(inv, (id) => shard.owns(id)) };
    return this.shardCache.inventory;
  }

  /** The state another replica continues from: the last statuses (keyed by the inventory) and the counters. */
  private saveState(): Map<string, Uint8Array> {
    const sections = new Map<string, Uint8Array>([[COUNTERS_SECTION, encodeCounters({ transitions: this.transitions, missing: this.missing, unexpected: this.unexpected })]]);
    if (this.previous && this.lastStatus) sections.set(STATUS_SECTION, encodeStatus(this.previous.inventory.key, this.lastStatus, this.previous.known));
    return sections;
  }

  /**
   * Takes over the publisher's counters and, when its inventory is this replica's too (same key), its statuses: the
   * families are rendered from them exactly as the publisher rendered them.
   */
  private async restoreState(sections: ReadonlyMap<string, Uint8Array>): Promise<ReadonlyMap<string, MetricFamily[]> | undefined> {
    const counters = sections.get(COUNTERS_SECTION);
    if (counters) {
      const c = decodeCounters(counters);
      this.transitions.clear();
      for (const [g, t] of c.transitions) this.transitions.set(g, t);
      this.missing.clear();
      for (const [g, n] of c.missing) this.missing.set(g, n);
      this.unexpected = c.unexpected;
    }
    const statusBytes = sections.get(STATUS_SECTION);
    if (!statusBytes) return undefined;
    const inv = await this.inventory.load();
    const published = decodeStatus(statusBytes, inv.key, inv.size);
    if (!published) {
      // Another inventory (a file changed on one replica first): no statuses to map, and no base to count changes from.
      this.ctx.logger.warn({ size: inv.size }, "the polling replica's inventory differs from this one's: its device statuses cannot be served here until both read the same file");
      this.previous = undefined;
      this.lastStatus = undefined;
      return undefined;
    }
    for (const g of inv.groupNames) if (!this.transitions.has(g)) this.transitions.set(g, { online: 0, offline: 0 });
    this.previous = { inventory: inv, known: published.known };
    this.lastStatus = published.status;
    return new Map([[this.cfg.instance_id, await this.render(inv, published.status)]]);
  }

  private async poll(inv: Inventory, run: RunContext, result: PollResult = { status: new Uint8Array(inv.size), unexpected: 0 }): Promise<PollResult> {
    const status = result.status;
    const api = this.useBatch ? BATCH_API : SINGLE_API;
    const qps = this.ctx.accounts.qpsFor(this.cfg.account, api);
    // Enough calls in flight to keep the quota busy at up to ~1.5 s of cloud latency; the limiter paces them.
    const concurrency = Math.min(512, Math.max(4, Math.ceil(qps * 1.5)));
    if (this.useBatch) {
      const chunks = Math.ceil(inv.size / BATCH_SIZE);
      try {
        await runPool(chunks, concurrency, (c) => this.queryBatch(inv, c * BATCH_SIZE, Math.min(inv.size, (c + 1) * BATCH_SIZE), result, run), run.signal);
      } catch (err) {
        if (!(err instanceof CloudError && err.code === 'ApiNotSupport')) throw err;
        this.ctx.logger.warn({ instance_id: this.cfg.instance_id }, `${BATCH_API} is not supported by this instance; falling back to ${SINGLE_API}`);
        this.useBatch = false;
        return this.poll(inv, run, result);
      }
    } else {
      await runPool(inv.size, concurrency, (i) => this.querySingle(inv.id(i), i, status, run), run.signal);
    }
    if (run.signal.aborted) throw new Error('the run was aborted: its deadline passed before every device was polled');
    return result;
  }

  private async queryBatch(inv: Inventory, from: number, to: number, result: PollResult, run: RunContext): Promise<void> {
    const chunk = inv.slice(from, to);
    const answer = await this.caller.call({
      api: BATCH_API,
      params: { InstanceId: this.cfg.instance_id, ClientIdList: chunk },
      target: this.cfg.instance_id,
      deadline: run.deadline,
      signal: run.signal,
      parse: (body) => parseBatchResponse(body, chunk),
    });
    for (let i = 0; i < chunk.length; i++) result.status[from + i] = statusOf(answer.status[i]);
    result.unexpected += answer.unexpected;
  }

  private async querySingle(id: string, index: number, status: Uint8Array, run: RunContext): Promise<void> {
    const answer = await this.caller.call({
      api: SINGLE_API,
      params: { InstanceId: this.cfg.instance_id, ClientId: id },
      target: this.cfg.instance_id,
      deadline: run.deadline,
      signal: run.signal,
      parse: parseSingleResponse,
    });
    status[index] = statusOf(answer);
  }

  /** What a successful poll changes in the counters: gaps per group, transitions, and the statuses to compare with next. */
  private countPoll(inv: Inventory, status: Uint8Array): void {
    const noAnswer = new Array<number>(inv.groupNames.length).fill(0);
    for (let i = 0; i < inv.size; i++) if (status[i] === STATUS_NO_ANSWER) noAnswer[inv.groupOf[i]]++;
    inv.groupNames.forEach((g, gi) => this.missing.set(g, (this.missing.get(g) ?? 0) + noAnswer[gi]));
    this.previous = { inventory: inv, known: this.countTransitions(inv, status) };
    this.lastStatus = status;
  }

  /** The families of a poll's statuses and the counters as they stand. */
  private async render(inv: Inventory, status: Uint8Array): Promise<MetricFamily[]> {
    const online = new Array<number>(inv.groupNames.length).fill(0);
    const offline = new Array<number>(inv.groupNames.length).fill(0);
    for (let i = 0; i < inv.size; i++) {
      if (status[i] === STATUS_ONLINE) online[inv.groupOf[i]]++;
      else if (status[i] === STATUS_OFFLINE) offline[inv.groupOf[i]]++;
    }

    const families: MetricFamily[] = [];
    if (this.cfg.per_client_series) families.push(await this.deviceLines.render(inv, status));
    else this.deviceLines.clear();

    const clients = new DeclaredFamilyBuilder(CLIENTS, this.ctx.staticLabels);
    inv.groupNames.forEach((group_id, gi) => {
      clients.sample({ ...this.where, group_id, state: 'online' }, online[gi]);
      clients.sample({ ...this.where, group_id, state: 'offline' }, offline[gi]);
    });
    families.push(clients.build());

    const transitions = new DeclaredFamilyBuilder(TRANSITIONS, this.ctx.staticLabels);
    for (const [group_id, t] of this.transitions) {
      transitions.sample({ ...this.where, group_id, to: 'online' }, t.online);
      transitions.sample({ ...this.where, group_id, to: 'offline' }, t.offline);
    }
    families.push(transitions.build());

    const missing = new DeclaredFamilyBuilder(STATUS_MISSING, this.ctx.staticLabels);
    for (const [group_id, n] of this.missing) missing.sample({ ...this.where, group_id }, n);
    families.push(missing.build(), singleSample(STATUS_UNEXPECTED, this.where, this.unexpected, this.ctx.staticLabels));
    return families;
  }

  /** Counts status changes against each device's last known status; returns the statuses the next poll compares with. */
  private countTransitions(inv: Inventory, status: Uint8Array): Uint8Array {
    for (const g of inv.groupNames) if (!this.transitions.has(g)) this.transitions.set(g, { online: 0, offline: 0 });
    const known = status.slice();
    const prev = this.previous;
    if (!prev) return known;
    const same = prev.inventory.key === inv.key;
    const before = new Map<string, number>();
    if (!same) for (let i = 0; i < prev.inventory.size; i++) before.set(prev.inventory.id(i), prev.known[i]);
    for (let i = 0; i < inv.size; i++) {
      const was = same ? prev.known[i] : (before.get(inv.id(i)) ?? STATUS_NO_ANSWER);
      if (status[i] === STATUS_NO_ANSWER) known[i] = was;
      else if (was !== STATUS_NO_ANSWER && was !== status[i]) {
        const t = this.transitions.get(inv.group(i))!;
        if (status[i] === STATUS_ONLINE) t.online++;
        else t.offline++;
      }
    }
    return known;
  }
}
