// The MQTT sessions section of docs/metrics.md: what a partial answer from the cloud does to each family.
import type { JobTypeDocs } from '../../core/job-type';

export const SESSIONS_DOCS: JobTypeDocs = {
  title: 'ApsaraMQ for MQTT — device status',
  notes: `**Partial answers.** A device the cloud's answer gives no status for — left out of a
\`BatchQuerySessionByClientIds\` answer, or a \`QuerySessionByClientId\` answer without \`OnlineStatus\` — has **no value
that poll**: its \`aliyun_mqtt_client_online\` line is left out of the output until a poll answers for it again
(Prometheus marks the series stale; it is never shown as offline), it is counted in neither \`state\` of
\`aliyun_mqtt_clients\` (so the two states add up to the devices answered, and the online ratio is not biased), and no
transition is counted for it: its next answered status is compared with its last known one (online → no answer →
online counts nothing; online → no answer → offline counts one change to \`offline\`). The poll still succeeds and the
other devices of the batch are exported. \`aliyun_mqtt_client_status_missing_total\` counts the gaps per group.
An answer entry for a client ID that was not asked for is ignored and counted in
\`aliyun_mqtt_client_status_unexpected_total\` (per instance: the cloud chose those IDs, so their groups are not a
bounded label set). Many gaps together with as many unexpected IDs usually mean the cloud spells the IDs differently
from the inventory. A body of the wrong shape (no list, an entry without \`ClientId\`, a status that is not a boolean)
is a \`MalformedResponse\`, retried.`,
};
