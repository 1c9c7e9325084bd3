// What aliyun_mqtt_sessions publishes, declared once.
import { declareFamily, ON_SCHEDULE } from '../../metrics/declare';

export const CLIENT_ONLINE = declareFamily({
  name: 'aliyun_mqtt_client_online',
  type: 'gauge',
  help: `1 if the ApsaraMQ for MQTT device is connected, 0 if not. ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id', 'client_id'],
  doc: '1 online, 0 offline; no line in a poll whose answer gave the device no status (below). Off with `per_client_series: false`',
});

export const CLIENTS = declareFamily({
  name: 'aliyun_mqtt_clients',
  type: 'gauge',
  help: `ApsaraMQ for MQTT devices per group and state (online, offline). ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id', 'state'],
  doc: 'devices per group and `state` ∈ `online`, `offline`; devices without a status that poll are in neither',
});

export const TRANSITIONS = declareFamily({
  name: 'aliyun_mqtt_client_transitions_total',
  type: 'counter',
  help: `Device status changes seen between two successful polls, by new state. ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id', 'to'],
  doc: 'status changes seen between two answered statuses of a device, `to` ∈ `online`, `offline`',
});

export const STATUS_MISSING = declareFamily({
  name: 'aliyun_mqtt_client_status_missing_total',
  type: 'counter',
  help: `Devices the cloud's answer gave no status for (left out of a batch answer, or answered without OnlineStatus): no value that poll. ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id'],
  doc: 'devices polled without getting a status back, summed over polls (below)',
});

export const STATUS_UNEXPECTED = declareFamily({
  name: 'aliyun_mqtt_client_status_unexpected_total',
  type: 'counter',
  help: `Entries of batch answers for client IDs that were not asked for, ignored. ${ON_SCHEDULE}`,
  // No group_id: the cloud, not the inventory, chose these IDs, so their groups are not a bounded set.
  labels: ['region', 'instance_id'],
  doc: 'batch-answer entries for client IDs not asked for (ignored), summed over polls; no `group_id`',
});

export const OFFLINE_LONGER_THAN = declareFamily({
  name: 'aliyun_mqtt_clients_offline_longer_than',
  type: 'gauge',
  help: `Devices of the group answered offline in the last poll that have provably been offline at least the duration. ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id', 'duration'],
  doc: 'devices answered offline whose offline time is known to be at least `duration`, one of the job\'s `offline_thresholds` (default `5m`, `1h`, `24h`, `7d`) as written; a device counts only for what the exporter has seen (below)',
});

export const CLIENT_FLAPS = declareFamily({
  name: 'aliyun_mqtt_client_flaps',
  type: 'gauge',
  help: `Status changes within the job's flapping_window of the devices that changed most often (top_flapping_clients of them at most). ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id', 'client_id'],
  doc: 'status changes within `flapping_window` (default `1h`) of the `top_flapping_clients` (default 20) devices that changed most; devices without a change have no series',
});

export const CLIENT_LAST_CHANGE = declareFamily({
  name: 'aliyun_mqtt_client_last_change_timestamp_seconds',
  type: 'gauge',
  help: `When the device's last status change was seen: the time of the answer that first showed its current status. ${ON_SCHEDULE}`,
  labels: ['region', 'instance_id', 'group_id', 'client_id'],
  doc: 'the answer that first showed the device\'s current status (the change happened after the answer before it); no series for a device never seen changing. Off unless `per_client_last_change: true`',
});

export const INVENTORY_ENTRIES = declareFamily({
  name: 'cloud_session_exporter_inventory_entries',
  type: 'gauge',
  help: 'Valid, de-duplicated inventory entries in the last run.',
  labels: ['job_name'],
});

export const INVENTORY_INVALID = declareFamily({
  name: 'cloud_session_exporter_inventory_invalid_entries',
  type: 'gauge',
  help: 'Inventory entries rejected in the last run (the first few are logged when the inventory changes).',
  labels: ['job_name'],
  doc: 'inventory lines rejected in the last run (bad client IDs); the first few are logged with their lines when the inventory changes',
});
