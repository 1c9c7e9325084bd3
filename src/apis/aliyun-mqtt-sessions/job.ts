// One aliyun_mqtt_sessions job: loads the inventory, asks the cloud which devices are online (batches of 10, or one
// by one where the batch API is not supported), and renders per-device lines, per-group counts and transitions.
// What a device without a status in the answer becomes ("no value this poll") is stated in docs.ts.
import { CloudError } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/client';
import { NO_VALUE } from '../../metrics/binary-gauge-lines';
import { DeclaredFamilyBuilder, singleSample } from '../../metrics/declare';
import type { MetricFamily } from '../../metrics/family';
import type { Job, JobContext, JobRunResult, JobStatus, RunContext } from '../../core/job-type';
import { rateRule, ruleQps } from '../../cloud/rate';
import { sessionsFigures, type PollFigures } from './status';
import { mqttEndpoint, MQTT_API_VERSION } from '../aliyun-mqtt/product';
import { runPool } from '../shared/pool';
import { DeviceLines } from './device-lines';
import { CLIENTS, INVENTORY_ENTRIES, INVENTORY_INVALID, STATUS_MISSING, STATUS_UNEXPECTED, TRANSITIONS } from './families';
import { InventoryLoader, type Inventory } from './inventory';
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
  /** For the status page: the inventory of the last run, and what the last successful poll found and took. */
  private lastInventory: { size: number; invalid: number } | undefined;
  private lastPoll: PollFigures | undefined;

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
    this.lastInventory = { size: inv.size, invalid: inv.invalid };
    try {
      const started = performance.now();
      const result = await this.poll(inv, run);
      const seconds = (performance.now() - started) / 1000;
      this.unexpected += result.unexpected;
      const families = await this.render(inv, result.status);
      this.notePoll(inv, result.status, seconds);
      return { targets: [{ instanceId, ok: true, families }], jobMetrics };
    } catch (err) {
      return { targets: [{ instanceId, ok: false, error: err as Error }], jobMetrics };
    }
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

  private async render(inv: Inventory, status: Uint8Array): Promise<MetricFamily[]> {
    const online = new Array<number>(inv.groupNames.length).fill(0);
    const offline = new Array<number>(inv.groupNames.length).fill(0);
    const noAnswer = new Array<number>(inv.groupNames.length).fill(0);
    for (let i = 0; i < inv.size; i++) {
      if (status[i] === STATUS_ONLINE) online[inv.groupOf[i]]++;
      else if (status[i] === STATUS_OFFLINE) offline[inv.groupOf[i]]++;
      else noAnswer[inv.groupOf[i]]++;
    }
    inv.groupNames.forEach((g, gi) => this.missing.set(g, (this.missing.get(g) ?? 0) + noAnswer[gi]));
    this.previous = { inventory: inv, known: this.countTransitions(inv, status) };

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
