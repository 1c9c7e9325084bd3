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
