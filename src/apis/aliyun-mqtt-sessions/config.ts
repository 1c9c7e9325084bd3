// aliyun_mqtt_sessions' configuration keys and the APIs it calls.
import path from 'node:path';
import { z } from 'zod';
import type { CommonJobConfig } from '../../config/schema';
import { mqttInstanceShape } from '../aliyun-mqtt/product';

export const BATCH_API = 'BatchQuerySessionByClientIds';
export const SINGLE_API = 'QuerySessionByClientId';
/** Client IDs per BatchQuerySessionByClientIds call (the API's documented maximum). */
export const BATCH_SIZE = 10;

export const shape = {
  ...mqttInstanceShape,
  client_ids: z.array(z.string()).default([]),
  client_ids_file: z.string().optional(),
  /** Per-device series; turn off for huge fleets and keep only per-group counts. */
  per_client_series: z.boolean().default(true),
  /** false: use QuerySessionByClientId only. */
  use_batch_api: z.boolean().default(true),
};

export type MqttSessionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

export function inventoryFile(cfg: MqttSessionsConfig, configDir: string): string | undefined {
  return cfg.client_ids_file ? path.resolve(configDir, cfg.client_ids_file) : undefined;
}
