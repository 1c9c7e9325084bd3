// aliyun_mqtt_sessions' configuration keys and the APIs it calls.
import path from 'node:path';
import { z } from 'zod';
import { durationMs, parseDuration } from '../../config/duration';
import type { CommonJobConfig } from '../../config/schema';
import { mqttInstanceShape } from '../aliyun-mqtt/product';

export const BATCH_API = 'BatchQuerySessionByClientIds';
export const SINGLE_API = 'QuerySessionByClientId';
/** Client IDs per BatchQuerySessionByClientIds call (the API's documented maximum). */
export const BATCH_SIZE = 10;

/**
 * One threshold of aliyun_mqtt_clients_offline_longer_than: its `duration` label is the text as written, so a
 * dashboard or alert matches what the operator wrote (`duration="24h"`); a bare number would be a label nobody reads.
 */
const offlineThreshold = z.union([z.string(), z.number()]).transform((text, ctx) => {
  if (typeof text === 'number') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `write it with a unit (e.g. ${text}s): the text becomes the duration label` });
    return z.NEVER;
  }
  const label = text.trim();
  try {
    const ms = parseDuration(label);
    if (ms >= 1000) return { label, seconds: Math.round(ms / 1000) };
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be at least 1s' });
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
  }
  return z.NEVER;
});
export type OfflineThreshold = z.output<typeof offlineThreshold>;

/** Longest flapping_window: the slices of the window are kept per device, and a week covers any alerting use. */
const MAX_FLAPPING_WINDOW_MS = 7 * 86_400_000;

export const shape = {
  ...mqttInstanceShape,
  client_ids: z.array(z.string()).default([]),
  client_ids_file: z.string().optional(),
  /** Per-device series; turn off for huge fleets and keep only per-group counts. */
  per_client_series: z.boolean().default(true),
  /** false: use QuerySessionByClientId only. */
  use_batch_api: z.boolean().default(true),
  /** Thresholds of aliyun_mqtt_clients_offline_longer_than, each its own series per group (output in ascending order). */
  offline_thresholds: z
    .array(offlineThreshold)
    .min(1, 'list at least one threshold')
    .max(16, 'at most 16 thresholds (each is a series per group)')
    .default(['5m', '1h', '24h', '7d'])
    .superRefine((list, ctx) => {
      const seen = new Map<number, string>();
      list.forEach((t, i) => {
        const other = seen.get(t.seconds);
        if (other !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: `${t.label} is the same threshold as ${other}` });
        seen.set(t.seconds, t.label);
      });
    })
    .transform((list) => [...list].sort((a, b) => a.seconds - b.seconds)),
  /** Devices of aliyun_mqtt_client_flaps: the ones that changed status most often within flapping_window; 0 turns it off. */
  top_flapping_clients: z.number().int().min(0).max(1000).default(20),
  flapping_window: durationMs
    .refine((ms) => ms >= 60_000 && ms <= MAX_FLAPPING_WINDOW_MS, { message: 'must be between 1m and 7d' })
    .default('1h'),
  /** aliyun_mqtt_client_last_change_timestamp_seconds per device: off by default, it is a series per device that ever changed. */
  per_client_last_change: z.boolean().default(false),
  /** Where the job keeps its per-device history across restarts (<state_dir>/<job name>.state); none: in memory only. */
  state_dir: z.string().min(1, 'must not be empty').optional(),
};

export type MqttSessionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

/** `<state_dir>/<job name>.state`: job names are unique in a config, so jobs may share a state_dir. */
export function stateFile(cfg: MqttSessionsConfig, configDir: string): string | undefined {
  return cfg.state_dir ? path.join(path.resolve(configDir, cfg.state_dir), `${cfg.name}.state`) : undefined;
}

export function inventoryFile(cfg: MqttSessionsConfig, configDir: string): string | undefined {
  return cfg.client_ids_file ? path.resolve(configDir, cfg.client_ids_file) : undefined;
}
