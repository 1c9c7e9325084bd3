// One aliyun_mqtt_sessions job: loads the inventory, asks the cloud which devices are online (batches of 10, or one
// by one where the batch API is not supported), and renders per-device lines, per-group counts and transitions, and
// from its per-device history (fleet-state.ts, saved to its state file when it has one) offline durations per group,
// the most flapping devices and last-change times. What a device without a status in the answer becomes ("no value
// this poll") and what the durations can claim are stated in docs.ts. In a cluster (handover.ts), the replica that
// polls publishes its statuses, counters and history so the others serve the same series and can take over.
import { CloudError } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/client';
import { DeclaredFamilyBuilder, singleSample } from '../../metrics/declare';
import type { MetricFamily } from '../../metrics/family';
import type { Job, JobContext, JobHandover, JobRunResult, JobStatus, RunContext } from '../../core/job-type';
import { rateRule, ruleQps } from '../../cloud/rate';
import { sessionsFigures, type PollFigures } from './status';
import { mqttEndpoint, MQTT_API_VERSION } from '../aliyun-mqtt/product';
import { runPool } from '../shared/pool';
import { DeviceLines, LastChangeLines } from './device-lines';
import { CLIENT_FLAPS, CLIENTS, INVENTORY_ENTRIES, INVENTORY_INVALID, OFFLINE_LONGER_THAN, STATUS_MISSING, STATUS_UNEXPECTED, TRANSITIONS } from './families';
import { FleetState, STATUS_NO_ANSWER, STATUS_OFFLINE, STATUS_ONLINE } from './fleet-state';
import { decodeCounters, decodeFleet, decodeStatus, encodeCounters, encodeFleet, encodeStatus, COUNTERS_SECTION, FLEET_SECTION, STATUS_SECTION } from './handover';
import { InventoryLoader, shardOf, type Inventory } from './inventory';
import { parseBatchResponse, parseSingleResponse, type AnsweredStatus } from './parse';
import { readStateFile, writeStateFile } from './state-file';
import { BATCH_API, BATCH_SIZE, inventoryFile, SINGLE_API, stateFile, type MqttSessionsConfig } from './config';

function statusOf(answer: AnsweredStatus): number {
  return answer === undefined ? STATUS_NO_ANSWER : answer ? STATUS_ONLINE : STATUS_OFFLINE;
}

/** What one poll learnt: a status per inventory entry, when it was answered, and how many answer entries were not asked for. */
interface PollResult {
  status: Uint8Array;
  /** Per batch of BATCH_SIZE entries, the time of the answer in seconds: when a change it shows was seen. */
  answeredAt: Uint32Array;
  unexpected: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export class MqttSessionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly inventory: InventoryLoader;
  private readonly where: { region: string; instance_id: string };
  private useBatch: boolean;
  /** Per device, what the polls so far showed; restored from the state file at the first run. */
  private state: FleetState;
  private readonly stateFile: string | undefined;
  private stateRestored = false;
  private readonly deviceLines: DeviceLines;
  private readonly lastChangeLines: LastChangeLines;
  private readonly transitions = new Map<string, { online: number; offline: number }>();
  private readonly missing = new Map<string, number>();
  private unexpected = 0;
  /** For the status page: the inventory of the last run, and what the last successful poll found and took. */
  private lastInventory: { size: number; invalid: number } | undefined;
  private lastPoll: PollFigures | undefined;
  /** The last successful poll's inventory and statuses, for the handover. */
  private last: { inventory: Inventory; status: Uint8Array } | undefined;
  /** Sharded: this replica's part of the last inventory, by inventory key and shard. */
  private shardCache: { key: string; inventory: Inventory } | undefined;
  readonly handover: JobHandover = {
    rebuildsFamilies: true,
    save: () => this.handoverSections(),
    restore: (sections) => this.takeOver(sections),
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
    this.lastChangeLines = new LastChangeLines(this.where, ctx.staticLabels);
    this.useBatch = cfg.use_batch_api;
    this.state = new FleetState(this.flapWindowSeconds());
    this.stateFile = stateFile(cfg, ctx.configDir);
  }

  private flapWindowSeconds(): number | undefined {
    return this.cfg.top_flapping_clients > 0 ? this.cfg.flapping_window / 1000 : undefined;
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
    this.lastInventory = { size: inv.size, invalid: inv.invalid };
    if (!this.stateRestored) {
      this.stateRestored = true;
      await this.restoreState();
    }
    try {
      const started = performance.now();
      const result = await this.poll(inv, run);
      const seconds = (performance.now() - started) / 1000;
      this.unexpected += result.unexpected;
      this.countPoll(inv, result);
      const families = await this.render(inv, result.status);
      this.notePoll(inv, result.status, seconds);
      await this.saveState();
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

  /** What another replica continues from: the counters, the last statuses and the per-device history, keyed by the inventory. */
  private async handoverSections(): Promise<Map<string, Uint8Array>> {
    const sections = new Map<string, Uint8Array>([[COUNTERS_SECTION, encodeCounters({ transitions: this.transitions, missing: this.missing, unexpected: this.unexpected })]]);
    if (this.last) {
      const history = this.state.snapshot();
      sections.set(STATUS_SECTION, encodeStatus(this.last.inventory.key, this.last.status, history.status));
      sections.set(FLEET_SECTION, await encodeFleet(this.last.inventory.key, history));
    }
    return sections;
  }

  /**
   * Takes over the publisher's counters and, when its inventory is this replica's too (same key), its statuses and
   * history: the families are rendered from them exactly as the publisher rendered them, and this replica counts on
   * from them if it polls next. A newer run than the state file's, so it replaces what the file gave.
   */
  private async takeOver(sections: ReadonlyMap<string, Uint8Array>): Promise<ReadonlyMap<string, MetricFamily[]> | undefined> {
    this.stateRestored = true;
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
      this.last = undefined;
      return undefined;
    }
    for (const g of inv.groupNames) if (!this.transitions.has(g)) this.transitions.set(g, { online: 0, offline: 0 });
    const fleetBytes = sections.get(FLEET_SECTION);
    const history = fleetBytes ? await decodeFleet(fleetBytes, inv.key, inv.ids) : undefined;
    if (history) this.state = FleetState.restore(history, this.flapWindowSeconds()).state;
    else {
      // A publisher without history: at least the last known statuses, so changes count from them.
      this.state = new FleetState(this.flapWindowSeconds());
      this.state.alignTo(inv.ids);
      this.state.observe(published.known, () => 0, () => undefined);
    }
    this.last = { inventory: inv, status: published.status };
    return new Map([[this.cfg.instance_id, await this.render(inv, published.status)]]);
  }

  status(): JobStatus {
    return { figures: sessionsFigures(this.lastInventory, this.lastPoll) };
  }

  private notePoll(inv: Inventory, status: Uint8Array, seconds: number): void {
    let online = 0;
    let offline = 0;
    for (const s of status) {
      if (s === STATUS_ONLINE) online++;
      else if (s === STATUS_OFFLINE) offline++;
    }
    // After a fallback, useBatch tells the API the poll ended on.
    const api = this.useBatch ? BATCH_API : SINGLE_API;
    const calls = this.useBatch ? Math.ceil(inv.size / BATCH_SIZE) : inv.size;
    const qps = ruleQps(rateRule(this.ctx.accounts.qpsFor(this.cfg.account, api)));
    this.lastPoll = { online, offline, noStatus: inv.size - online - offline, seconds, api, calls, qps };
  }

  private async poll(
    inv: Inventory,
    run: RunContext,
    result: PollResult = { status: new Uint8Array(inv.size), answeredAt: new Uint32Array(Math.ceil(inv.size / BATCH_SIZE)), unexpected: 0 },
  ): Promise<PollResult> {
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
      await runPool(inv.size, concurrency, (i) => this.querySingle(inv.id(i), i, result, run), run.signal);
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
    result.answeredAt[from / BATCH_SIZE] = nowSeconds();
    result.unexpected += answer.unexpected;
  }

  private async querySingle(id: string, index: number, result: PollResult, run: RunContext): Promise<void> {
    const answer = await this.caller.call({
      api: SINGLE_API,
      params: { InstanceId: this.cfg.instance_id, ClientId: id },
      target: this.cfg.instance_id,
      deadline: run.deadline,
      signal: run.signal,
      parse: parseSingleResponse,
    });
    result.status[index] = statusOf(answer);
    result.answeredAt[Math.floor(index / BATCH_SIZE)] = nowSeconds();
  }

  /** What a successful poll changes: gaps per group, transitions, the per-device history, the statuses to publish. */
  private countPoll(inv: Inventory, result: PollResult): void {
    const noAnswer = new Array<number>(inv.groupNames.length).fill(0);
    for (let i = 0; i < inv.size; i++) if (result.status[i] === STATUS_NO_ANSWER) noAnswer[inv.groupOf[i]]++;
    inv.groupNames.forEach((g, gi) => this.missing.set(g, (this.missing.get(g) ?? 0) + noAnswer[gi]));
    this.countTransitions(inv, result);
    this.last = { inventory: inv, status: result.status };
  }

  /** The families of a poll's statuses, the counters and the history as they stand. */
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
    families.push(...(await this.renderHistory(inv, status)));
    return families;
  }

  /** The families drawn from the per-device history: offline durations per group, the most flapping devices, last changes. */
  private async renderHistory(inv: Inventory, status: Uint8Array): Promise<MetricFamily[]> {
    const now = nowSeconds();
    const thresholds = this.cfg.offline_thresholds;
    const counts = this.state.offlineLongerThan(status, inv.groupOf, inv.groupNames.length, thresholds.map((t) => t.seconds), now);
    const offline = new DeclaredFamilyBuilder(OFFLINE_LONGER_THAN, this.ctx.staticLabels);
    inv.groupNames.forEach((group_id, gi) => thresholds.forEach((t, k) => offline.sample({ ...this.where, group_id, duration: t.label }, counts[gi * thresholds.length + k])));
    const families = [offline.build()];
    if (this.cfg.top_flapping_clients > 0) {
      const flaps = new DeclaredFamilyBuilder(CLIENT_FLAPS, this.ctx.staticLabels);
      for (const { index, changes } of this.state.mostFlapping(this.cfg.top_flapping_clients, now)) flaps.sample({ ...this.where, group_id: inv.group(index), client_id: inv.id(index) }, changes);
      families.push(flaps.build());
    }
    if (this.cfg.per_client_last_change) families.push(await this.lastChangeLines.render(inv, this.state));
    return families;
  }

  /** Counts status changes against each device's last answered status, into the per-group transition counters. */
  private countTransitions(inv: Inventory, result: PollResult): void {
    for (const g of inv.groupNames) if (!this.transitions.has(g)) this.transitions.set(g, { online: 0, offline: 0 });
    this.state.alignTo(inv.ids);
    this.state.observe(
      result.status,
      (i) => result.answeredAt[Math.floor(i / BATCH_SIZE)],
      (i, to) => {
        const t = this.transitions.get(inv.group(i))!;
        if (to === STATUS_ONLINE) t.online++;
        else t.offline++;
      },
    );
  }

  /** Once, before the first poll: the history the state file kept, if there is one this job can use. */
  private async restoreState(): Promise<void> {
    if (this.stateFile === undefined) return;
    const read = await readStateFile(this.stateFile, { jobName: this.ctx.jobName, instanceId: this.cfg.instance_id });
    const log = this.ctx.logger;
    if (!read.found) {
      log.info({ file: this.stateFile }, 'no fleet state file yet: offline durations and last changes start unknown');
    } else if ('problem' in read) {
      log.warn({ file: this.stateFile, problem: read.problem }, `ignoring the fleet state file: ${read.problem}; offline durations and last changes start unknown, and the next poll replaces it`);
    } else {
      const { state, flapsDropped } = FleetState.restore(read.state, this.flapWindowSeconds());
      this.state = state;
      log.info({ file: this.stateFile, devices: state.size, saved_at: new Date(read.savedAt * 1000).toISOString() }, 'restored the fleet state');
      if (flapsDropped) log.info({ file: this.stateFile }, 'flapping_window changed since the state was saved: flapping counts start afresh');
    }
  }

  /** After each successful poll; a failure is logged, not fatal: the state in memory is still right. */
  private async saveState(): Promise<void> {
    if (this.stateFile === undefined) return;
    try {
      await writeStateFile(this.stateFile, { jobName: this.ctx.jobName, instanceId: this.cfg.instance_id }, this.state.snapshot(), nowSeconds());
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.ctx.logger.warn({ file: this.stateFile, code: e.code, err: e.message }, 'cannot write the fleet state file; a restart would lose offline durations and last changes');
    }
  }
}
