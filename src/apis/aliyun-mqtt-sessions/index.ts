// Job type aliyun_mqtt_sessions: which ApsaraMQ for MQTT devices are online, via BatchQuerySessionByClientIds
// (10 IDs a call, 100 QPS) with a fallback to QuerySessionByClientId (500 QPS).
import type { ApiUsage, JobType } from '../../core/job-type';
import { labelNamesOfFamilies } from '../../metrics/declare';
import { BATCH_API, BATCH_SIZE, inventoryFile, shape, SINGLE_API, stateFile, type MqttSessionsConfig } from './config';
import { SESSIONS_DOCS } from './docs';
import {
  CLIENT_FLAPS,
  CLIENT_LAST_CHANGE,
  CLIENT_ONLINE,
  CLIENTS,
  INVENTORY_ENTRIES,
  INVENTORY_INVALID,
  OFFLINE_LONGER_THAN,
  STATUS_MISSING,
  STATUS_UNEXPECTED,
  TRANSITIONS,
} from './families';
import { readInventorySync } from './inventory';
import { readStateFileSync } from './state-file';
import { billedOn, MQTT_SOURCE_IP_CEILING, mqttEndpoint } from '../aliyun-mqtt/product';
import { MqttSessionsJob } from './job';

const FAMILIES = [CLIENT_ONLINE, CLIENTS, TRANSITIONS, STATUS_MISSING, STATUS_UNEXPECTED, OFFLINE_LONGER_THAN, CLIENT_FLAPS, CLIENT_LAST_CHANGE];

export const aliyunMqttSessions: JobType<MqttSessionsConfig> = {
  type: 'aliyun_mqtt_sessions',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [BATCH_API]: 100, [SINGLE_API]: 500 },
  sourceIpCeiling: MQTT_SOURCE_IP_CEILING,
  families: FAMILIES,
  jobMetrics: [INVENTORY_ENTRIES, INVENTORY_INVALID],
  labelNames: labelNamesOfFamilies(FAMILIES),
  instanceIds: (cfg) => [cfg.instance_id],
  docs: SESSIONS_DOCS,
  validate(cfg) {
    return cfg.client_ids.length === 0 && !cfg.client_ids_file ? [[[], 'give client_ids or client_ids_file (or both)']] : [];
  },
  inspect(cfg, configDir) {
    const file = inventoryFile(cfg, configDir);
    const state = stateNote(cfg, configDir);
    try {
      const { inventory, rejected } = readInventorySync(cfg.client_ids, file);
      const notes =
        inventory.invalid > 0
          ? [`${inventory.invalid} invalid client ID(s) will be skipped, e.g. ${rejected.map((r) => `${r.where} ${JSON.stringify(r.id)} (${r.reason})`).join('; ')}`]
          : [];
      const problems: Array<[Array<string | number>, string]> = inventory.size === 0 ? [[[file ? 'client_ids_file' : 'client_ids'], 'holds no valid client ID: the job would poll nothing']] : [];
      return { problems, notes: [`${inventory.size} device(s) in ${inventory.groupNames.length} group(s)`, ...notes, ...state] };
    } catch (err) {
      return { problems: [[['client_ids_file'], `cannot read ${cfg.client_ids_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]], notes: state };
    }
  },
  plan(cfg, configDir): ApiUsage[] {
    const devices = countInventory(cfg, configDir);
    return cfg.use_batch_api
      ? [{ account: cfg.account, api: BATCH_API, endpoint: mqttEndpoint(cfg), callsPerRun: Math.ceil(devices / BATCH_SIZE), basis: `${devices} devices / ${BATCH_SIZE} per call`, billed: billedOn(cfg) }]
      : [{ account: cfg.account, api: SINGLE_API, endpoint: mqttEndpoint(cfg), callsPerRun: devices, basis: `${devices} devices, one per call`, billed: billedOn(cfg) }];
  },
  create(cfg, ctx) {
    return new MqttSessionsJob(cfg, ctx);
  },
};

/** What the job will find in its state file at start-up (it is read, not written: --config.check changes nothing). */
function stateNote(cfg: MqttSessionsConfig, configDir: string): string[] {
  const file = stateFile(cfg, configDir);
  if (file === undefined) return ['no state_dir: offline durations and last changes start unknown after every restart'];
  const read = readStateFileSync(file, { jobName: cfg.name, instanceId: cfg.instance_id });
  if (!read.found) return [`state file ${file}: not there yet (written after the first successful poll)`];
  if ('problem' in read) return [`state file ${file} will be ignored and replaced: ${read.problem}`];
  return [`state file ${file}: ${read.state.ids.size} device(s), saved ${new Date(read.savedAt * 1000).toISOString()}`];
}

/** Devices the run will poll, by the run's own parser; 0 when the file cannot be read (inspect() reports that). */
function countInventory(cfg: MqttSessionsConfig, configDir: string): number {
  try {
    return readInventorySync(cfg.client_ids, inventoryFile(cfg, configDir)).inventory.size;
  } catch {
    return 0;
  }
}
