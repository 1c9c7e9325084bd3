// The MQTT sessions section of docs/metrics.md: what a partial answer from the cloud does to each family, and what the
// offline durations, flapping counts and last-change times can claim.
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
is a \`MalformedResponse\`, retried.

**Offline durations, flapping and last changes.** The job keeps, per device, its last answered status and since when
that status is known to hold: the time of the answer that showed it change, or — for a device never seen changing —
the time of the first answer the exporter got for it. So durations are lower bounds and start as unknown, not as zero:
a device answered offline counts in \`aliyun_mqtt_clients_offline_longer_than{duration}\` only once the time it is
known to have been offline reaches \`duration\` (right after the exporter first sees a fleet, every offline device
counts in no bucket; one offline since then counts in \`24h\` 24 hours later), and it has no
\`aliyun_mqtt_client_last_change_timestamp_seconds\` series until it is seen changing. A change is seen between two
answers, so the last-change time is the later answer's (at most one poll cycle after the change), and a device that
went offline and back between two answers shows nothing. Only devices answered offline in the last poll count, so
each bucket is at most \`aliyun_mqtt_clients{state="offline"}\`. \`aliyun_mqtt_client_flaps\` counts a device's changes in
12 slices of \`flapping_window\`: the oldest slice drops out whole, so a count covers between 11/12 of the window and
all of it; ties for the last places go to the devices listed first in the inventory.

**Across restarts.** With \`state_dir\`, the job writes this history to \`<state_dir>/<job name>.state\` after every
successful poll (a temporary file, fsync, rename: a crash leaves the previous file or the new one) and reads it back
at start-up, so durations, last changes and flapping counts carry on where they were; the first poll after a restart
compares each device with its saved status, so a change made while the exporter was down is counted then. Devices
are matched by client ID, so an edited inventory keeps the history of the devices it still lists. A file that is
damaged, of another job or instance, or not a state file at all is logged (\`ignoring the fleet state file: …\`) and
ignored — the job starts as without one and replaces it after its next poll — and \`--config.check\` says what it
will find. About 43 bytes per device (the client IDs make up most of it). Without \`state_dir\` the history lives in
memory only and starts unknown after every restart.`,
};
