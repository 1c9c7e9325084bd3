// The canary's section of docs/metrics.md: what its error codes mean and how its verdict relates to the job's.
import type { JobTypeDocs } from '../../core/job-type';

export const PROBE_DOCS: JobTypeDocs = {
  title: 'ApsaraMQ for MQTT — SendMessage canary',
  notes: `\`aliyun_mqtt_probe_errors_total{code}\` — why a probe failed (a lost probe is counted in \`aliyun_mqtt_probe_lost_total\`
only):

| \`code\` | meaning |
|---|---|
| the cloud's error code, e.g. \`InstancePermissionCheckFailed\`, \`Throttling.User\`, \`SendMessageFailed\` | SendMessage was refused (never retried: a retry would bill a second message), or, in token mode, ApplyToken was (each failed ApplyToken counted once; it fails a probe only when the subscriber then has no valid token to sign in with, as \`SubscriberDisconnected\`) |
| \`Timeout\`, \`NetworkError\`, \`MalformedResponse\` | SendMessage got no usable answer |
| \`SubscriberDisconnected\` | the MQTT connection was down when the probe was sent, or dropped before the probe arrived: that probe fails, even if the message arrived after a reconnect. A drop that healed between two probes is counted too, but fails neither: the next probe runs on a working connection |
| \`SubscriberAuthFailed\` | the broker refused the sign-in (CONNACK "bad user name or password" / "not authorized"): wrong keys, group ID or instance, or in token mode a token it no longer accepts (revoked, expired); the next attempt applies for a new token |
| \`SubscribeFailed\` | connected, but the broker refused the subscription to the probe topic (SUBACK failure: topic or permission) |

\`SubscriberDisconnected\` and \`SubscriberAuthFailed\` exist at 0 from start-up in end-to-end mode, so \`increase()\` sees
the first one. The probe's verdict is \`aliyun_mqtt_probe_success\`; a failed probe also fails the run, so
\`cloud_session_exporter_job_success\` is 0 as well (and the probe's metrics are still published: a failed probe is
data). The exporter logs each failed probe with its reasons (\`subscriber_not_connected\`, \`subscriber_dropped\`,
\`lost\`) and what happened, or with the cloud's error when SendMessage failed.`,
};
