// What aliyun_redis_sessions publishes, declared once: `instance_id` first, then the metric's own label.
import { declareFamily, ON_SCHEDULE } from '../../metrics/declare';

const g = <const L extends string>(name: string, help: string, labels: readonly L[], doc?: string, type: 'gauge' | 'counter' = 'gauge') =>
  declareFamily({ name, type, help: `${help} ${ON_SCHEDULE}`, labels, doc });

export const SESSIONS = g('aliyun_redis_sessions', 'Current ApsaraDB for Redis sessions (DAS Data.Total).', ['instance_id'], '`Data.Total`: current sessions');
export const LISTED_SESSIONS = g('aliyun_redis_listed_sessions', 'ApsaraDB for Redis sessions DAS listed (can be fewer than the total).', ['instance_id'], 'sessions actually listed (can be fewer than the total)');
export const NODE_SESSIONS = g('aliyun_redis_node_sessions', 'Listed ApsaraDB for Redis sessions per proxy or data node.', ['instance_id', 'node_id'], 'listed sessions per proxy / data node');
export const CLIENT_SESSIONS = g(
  'aliyun_redis_client_sessions',
  'ApsaraDB for Redis sessions per source IP (DAS SourceStats); the top max_client_ips IPs, the rest in client_ip="other".',
  ['instance_id', 'client_ip'],
  'sessions per source IP (SourceStats), capped, rest in `other`',
);
export const CLIENT_IPS_FOLDED = g('aliyun_redis_client_ips_folded_total', 'Source IPs folded into client_ip="other", summed over polls.', ['instance_id'], 'source IPs folded into `other`, summed over polls', 'counter');
export const COMMAND_SESSIONS = g(
  'aliyun_redis_command_sessions',
  'Listed ApsaraDB for Redis sessions by last command (lower-case); the top max_commands, the rest in command="other".',
  ['instance_id', 'command'],
  'listed sessions by last command (lower-case, capped, rest in `other`)',
);
export const IDLE_SESSIONS = g('aliyun_redis_idle_sessions', 'Listed ApsaraDB for Redis sessions idle at least idle_seconds_min seconds.', ['instance_id', 'idle_seconds_min'], 'listed sessions idle at least that long (default thresholds 60, 300, 3600)');
export const OUTPUT_BUFFER = g('aliyun_redis_output_buffer_bytes', 'Output-buffer memory (omem) of the listed ApsaraDB for Redis sessions, in bytes.', ['instance_id'], 'total output-buffer memory (`omem`)');
export const CLIENT_OUTPUT_BUFFER = g(
  'aliyun_redis_client_output_buffer_bytes',
  'Output-buffer memory (omem) of the listed sessions per source IP, in bytes (IPs capped like aliyun_redis_client_sessions).',
  ['instance_id', 'client_ip'],
  'output-buffer memory per client IP (capped like sessions)',
);
export const CLIENT_QUERY_BUFFER = g(
  'aliyun_redis_client_query_buffer_bytes',
  'Query-buffer bytes (qbuf) of the listed sessions per source IP (IPs capped like aliyun_redis_client_sessions).',
  ['instance_id', 'client_ip'],
  'query-buffer bytes (`qbuf`) per client IP (capped like sessions)',
);
export const PUBSUB_SESSIONS = g('aliyun_redis_pubsub_sessions', 'Listed ApsaraDB for Redis sessions subscribed to a channel or pattern.', ['instance_id'], 'sessions subscribed to a channel or pattern');
export const MULTI_SESSIONS = g('aliyun_redis_multi_sessions', 'Listed ApsaraDB for Redis sessions inside MULTI.', ['instance_id'], 'sessions inside MULTI');
export const BLOCKED_SESSIONS = g('aliyun_redis_blocked_sessions', 'Listed ApsaraDB for Redis sessions blocked in a command (flag b).', ['instance_id'], 'sessions blocked (flag `b`)');
export const OLDEST_SESSION_AGE = g('aliyun_redis_oldest_session_age_seconds', 'Age of the oldest listed ApsaraDB for Redis session, in seconds.', ['instance_id'], 'age of the oldest listed session');

export const REDIS_FAMILIES = [
  SESSIONS,
  LISTED_SESSIONS,
  NODE_SESSIONS,
  CLIENT_SESSIONS,
  CLIENT_IPS_FOLDED,
  COMMAND_SESSIONS,
  IDLE_SESSIONS,
  OUTPUT_BUFFER,
  CLIENT_OUTPUT_BUFFER,
  CLIENT_QUERY_BUFFER,
  PUBSUB_SESSIONS,
  MULTI_SESSIONS,
  BLOCKED_SESSIONS,
  OLDEST_SESSION_AGE,
];
