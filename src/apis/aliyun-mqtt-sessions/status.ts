// What the status page shows of an aliyun_mqtt_sessions job: the fleet as of its last successful poll, the
// inventory, and how long a poll took against the shortest cycle the API's QPS allows (the quota plan's bound).
import type { StatusFigure } from '../../core/job-type';

/** What the job remembers of its last successful poll. */
export interface PollFigures {
  online: number;
  offline: number;
  /** Devices the answer gave no status (no value that poll). */
  noStatus: number;
  /** Wall time of the calls, inventory read excluded. */
  seconds: number;
  api: string;
  calls: number;
  /** The rate the limiter enforced for `api`. */
  qps: number;
}

export function sessionsFigures(inventory: { size: number; invalid: number } | undefined, poll: PollFigures | undefined): StatusFigure[] {
  const boundSeconds = poll && poll.calls / poll.qps;
  const efficiency = poll && poll.seconds > 0 ? `; bound ÷ cycle ${Math.round((boundSeconds! / poll.seconds) * 100)}%` : '';
  return [
    { label: 'devices', value: inventory?.size },
    { label: 'online', value: poll?.online },
    { label: 'offline', value: poll?.offline },
    ...(poll && poll.noStatus > 0 ? [{ label: 'no status in the answer', value: poll.noStatus, warn: true }] : []),
    { label: 'invalid inventory entries', value: inventory?.invalid, warn: (inventory?.invalid ?? 0) > 0 },
    { label: 'cycle time', value: poll?.seconds, unit: 'seconds' },
    {
      label: 'quota bound',
      value: boundSeconds,
      unit: 'seconds',
      // Per job: jobs of one account calling the same API share its QPS, so each of them may take longer than this.
      note: poll && `${poll.calls.toLocaleString('en-US')} ${poll.api} calls at ${poll.qps} QPS${efficiency}`,
    },
  ];
}
