// Job type aliyun_mqtt_sessions: which ApsaraMQ for MQTT devices are online, via BatchQuerySessionByClientIds
// (10 IDs a call, 100 QPS) with a fallback to QuerySessionByClientId (500 QPS).
import path from 'node:path';
import { z } from 'zod';
import { CloudError } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/api-client';
import type { CommonJobConfig } from '../../config/schema';
import { BinaryGaugeLines } from '../../metrics/binary-gauge-lines';
import { FamilyBuilder, renderLabels, joinLabels, type MetricFamily } from '../../metrics/family';
import { endpointUrl, regionId } from '../shared/endpoint';
import { runPool } from '../shared/pool';
import { InventoryLoader, readInventorySync, type Inventory } from './inventory';
import type { ApiUsage, Job, JobContext, JobRunResult, JobType, RunContext } from '../../core/job-type';

export const MQTT_API_VERSION = '2020-04-20';
export const BATCH_API = 'BatchQuerySessionByClientIds';
export const SINGLE_API = 'QuerySessionByClientId';
export const BATCH_SIZE = 10;
const REFRESH_NOTE = 'Refreshed on the job schedule, not at scrape time.';

const shape = {
  account: z.string(),
  region: regionId,
  endpoint: endpointUrl.optional(),
  instance_id: z.string().min(1),
  client_ids: z.array(z.string()).default([]),
  client_ids_file: z.string().optional(),
  /** Per-device series; turn off for huge fleets and keep only per-group counts. */
  per_client_series: z.boolean().default(true),
  /** false: use QuerySessionByClientId only. */
  use_batch_api: z.boolean().default(true),
};

export type MqttSessionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

export function defaultMqttEndpoint(region: string): string {
  return `https://onsmqtt.${region}.aliyuncs.com`;
}

export const aliyunMqttSessions: JobType<MqttSessionsConfig> = {
  type: 'aliyun_mqtt_sessions',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [BATCH_API]: 100, [SINGLE_API]: 500 },
  labelNames: ['region', 'instance_id', 'group_id', 'client_id', 'state', 'to'],
  instanceIds: (cfg) => [cfg.instance_id],
  validate(cfg) {
    return cfg.client_ids.length === 0 && !cfg.client_ids_file ? [[[], 'give client_ids or client_ids_file (or both)']] : [];
  },
  inspect(cfg, configDir) {
    const file = inventoryFile(cfg, configDir);
    try {
      const { inventory, rejected } = readInventorySync(cfg.client_ids, file);
      const notes =
        inventory.invalid > 0
          ? [`${inventory.invalid} invalid client ID(s) will be skipped, e.g. ${rejected.map((r) => `${r.where} ${JSON.stringify(r.id)} (${r.reason})`).join('; ')}`]
          : [];
      const problems: Array<[Array<string | number>, string]> = inventory.size === 0 ? [[[file ? 'client_ids_file' : 'client_ids'], 'holds no valid client ID: the job would poll nothing']] : [];
      return { problems, notes: [`${inventory.size} device(s) in ${inventory.groupNames.length} group(s)`, ...notes] };
    } catch (err) {
      return { problems: [[['client_ids_file'], `cannot read ${cfg.client_ids_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]], notes: [] };
    }
  },
  plan(cfg, configDir): ApiUsage[] {
    const devices = countInventory(cfg, configDir);
    return cfg.use_batch_api
      ? [{ account: cfg.account, api: BATCH_API, callsPerRun: Math.ceil(devices / BATCH_SIZE), basis: `${devices} devices / ${BATCH_SIZE} per call` }]
      : [{ account: cfg.account, api: SINGLE_API, callsPerRun: devices, basis: `${devices} devices, one per call` }];
  },
  create(cfg, ctx) {
    return new MqttSessionsJob(cfg, ctx);
  },
};

function inventoryFile(cfg: MqttSessionsConfig, configDir: string): string | undefined {
  return cfg.client_ids_file ? path.resolve(configDir, cfg.client_ids_file) : undefined;
}

/** Devices the run will poll, by the run's own parser; 0 when the file cannot be read (inspect() reports that). */
function countInventory(cfg: MqttSessionsConfig, configDir: string): number {
  try {
    return readInventorySync(cfg.client_ids, inventoryFile(cfg, configDir)).inventory.size;
  } catch {
    return 0;
  }
}

const STATUS_OFFLINE = 0;
const STATUS_ONLINE = 1;

class MqttSessionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly inventory: InventoryLoader;
  private readonly baseLabels: string;
  private readonly staticLabels: string;
  private useBatch: boolean;
  private previous: { inventory: Inventory; status: Uint8Array } | undefined;
  /** aliyun_mqtt_client_online, rendered per inventory and patched per poll (see binary-gauge-lines.ts). */
  private readonly onlineLines = new BinaryGaugeLines('aliyun_mqtt_client_online', `1 if the ApsaraMQ for MQTT device is connected, 0 if not. ${REFRESH_NOTE}`);
  private readonly transitions = new Map<string, { online: number; offline: number }>();

  constructor(
    private readonly cfg: MqttSessionsConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [cfg.instance_id];
    this.caller = ctx.accounts.caller(cfg.account, cfg.endpoint ?? defaultMqttEndpoint(cfg.region), MQTT_API_VERSION);
    this.inventory = new InventoryLoader(cfg.client_ids, inventoryFile(cfg, ctx.configDir), ctx.logger);
    this.baseLabels = renderLabels({ region: cfg.region, instance_id: cfg.instance_id });
    this.staticLabels = renderLabels(ctx.labels);
    this.useBatch = cfg.use_batch_api;
  }

  async run(run: RunContext): Promise<JobRunResult> {
    let inv: Inventory;
    try {
      inv = await this.inventory.load();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason = `cannot read client_ids_file ${this.cfg.client_ids_file}: ${e.code ?? e.message}`;
      return { targets: [{ instanceId: this.cfg.instance_id, ok: false, families: [], error: new Error(reason) }], blocked: reason };
    }
    try {
      const status = await this.poll(inv, run);
      const families = await this.render(inv, status);
      this.previous = { inventory: inv, status };
      return { targets: [{ instanceId: this.cfg.instance_id, ok: true, families }], inventory: { valid: inv.size, invalid: inv.invalid } };
    } catch (err) {
      return { targets: [{ instanceId: this.cfg.instance_id, ok: false, families: [], error: err as Error }], inventory: { valid: inv.size, invalid: inv.invalid } };
    }
  }

  private async poll(inv: Inventory, run: RunContext): Promise<Uint8Array> {
    const status = new Uint8Array(inv.size);
    const api = this.useBatch ? BATCH_API : SINGLE_API;
    const qps = this.ctx.accounts.qpsFor(this.cfg.account, api);
    // Enough calls in flight to keep the quota busy at up to ~1.5 s of cloud latency; the limiter paces them.
    const concurrency = Math.min(512, Math.max(4, Math.ceil(qps * 1.5)));
    if (this.useBatch) {
      const chunks = Math.ceil(inv.size / BATCH_SIZE);
      try {
        await runPool(chunks, concurrency, (c) => this.queryBatch(inv, c * BATCH_SIZE, Math.min(inv.size, (c + 1) * BATCH_SIZE), status, run), run.signal);
      } catch (err) {
        if (!(err instanceof CloudError && err.code === 'ApiNotSupport')) throw err;
        this.ctx.logger.warn({ instance_id: this.cfg.instance_id }, `${BATCH_API} is not supported by this instance; falling back to ${SINGLE_API}`);
        this.useBatch = false;
        return this.poll(inv, run);
      }
    } else {
      await runPool(inv.size, concurrency, (i) => this.querySingle(inv.id(i), i, status, run), run.signal);
    }
    if (run.signal.aborted) throw new Error('the run was aborted: its deadline passed before every device was polled');
    return status;
  }

  private async queryBatch(inv: Inventory, from: number, to: number, status: Uint8Array, run: RunContext): Promise<void> {
    const chunk = inv.slice(from, to);
    const online = await this.caller.call(BATCH_API, { InstanceId: this.cfg.instance_id, ClientIdList: chunk }, {
      deadline: run.deadline,
      signal: run.signal,
      target: this.cfg.instance_id,
      parse: (body) => parseBatchResponse(body, chunk),
    });
    for (let i = 0; i < chunk.length; i++) status[from + i] = online[i] ? STATUS_ONLINE : STATUS_OFFLINE;
  }

  private async querySingle(id: string, index: number, status: Uint8Array, run: RunContext): Promise<void> {
    const online = await this.caller.call(SINGLE_API, { InstanceId: this.cfg.instance_id, ClientId: id }, {
      deadline: run.deadline,
      signal: run.signal,
      target: this.cfg.instance_id,
      parse: parseSingleResponse,
    });
    status[index] = online ? STATUS_ONLINE : STATUS_OFFLINE;
  }

  private async render(inv: Inventory, status: Uint8Array): Promise<MetricFamily[]> {
    const online = new Array<number>(inv.groupNames.length).fill(0);
    const offline = new Array<number>(inv.groupNames.length).fill(0);
    for (let i = 0; i < inv.size; i++) {
      if (status[i] === STATUS_ONLINE) online[inv.groupOf[i]]++;
      else offline[inv.groupOf[i]]++;
    }
    this.countTransitions(inv, status);

    const families: MetricFamily[] = [];
    if (this.cfg.per_client_series) families.push(await this.renderPerDevice(inv, status));
    else this.onlineLines.clear();

    const clients = new FamilyBuilder('aliyun_mqtt_clients', `ApsaraMQ for MQTT devices per group and state (online, offline). ${REFRESH_NOTE}`, 'gauge');
    inv.groupNames.forEach((group, gi) => {
      const g = joinLabels(this.baseLabels, renderLabels({ group_id: group }));
      clients.sample(joinLabels(g, 'state="online"', this.staticLabels), online[gi]);
      clients.sample(joinLabels(g, 'state="offline"', this.staticLabels), offline[gi]);
    });
    families.push(clients.build());

    const transitions = new FamilyBuilder('aliyun_mqtt_client_transitions_total', `Device status changes seen between two successful polls, by new state. ${REFRESH_NOTE}`, 'counter');
    for (const [group, t] of this.transitions) {
      const g = joinLabels(this.baseLabels, renderLabels({ group_id: group }));
      transitions.sample(joinLabels(g, 'to="online"', this.staticLabels), t.online);
      transitions.sample(joinLabels(g, 'to="offline"', this.staticLabels), t.offline);
    }
    families.push(transitions.build());
    return families;
  }

  private renderPerDevice(inv: Inventory, status: Uint8Array): Promise<MetricFamily> {
    const groupLabels = inv.groupNames.map((group) => joinLabels(this.baseLabels, renderLabels({ group_id: group })));
    const labelsOf = (i: number): string => joinLabels(groupLabels[inv.groupOf[i]], renderLabels({ client_id: inv.id(i) }), this.staticLabels);
    return this.onlineLines.render(inv.key, inv.size, labelsOf, status);
  }

  private countTransitions(inv: Inventory, status: Uint8Array): void {
    for (const g of inv.groupNames) if (!this.transitions.has(g)) this.transitions.set(g, { online: 0, offline: 0 });
    const prev = this.previous;
    if (!prev) return;
    const bump = (group: string, now: number) => {
      const t = this.transitions.get(group)!;
      if (now === STATUS_ONLINE) t.online++;
      else t.offline++;
    };
    if (prev.inventory.key === inv.key) {
      for (let i = 0; i < status.length; i++) if (status[i] !== prev.status[i]) bump(inv.group(i), status[i]);
      return;
    }
    const before = new Map<string, number>();
    for (let i = 0; i < prev.inventory.size; i++) before.set(prev.inventory.id(i), prev.status[i]);
    for (let i = 0; i < inv.size; i++) {
      const was = before.get(inv.id(i));
      if (was !== undefined && was !== status[i]) bump(inv.group(i), status[i]);
    }
  }
}

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
