// The emulator's ground truth as of now: what a perfect exporter would report for every instance.
import type { ClientConnection, MongoInstanceState } from './mongodb-clients';
import type { MqttInstanceState } from './mqtt-fleet';
import type { DasData, RedisInstanceState } from './redis-sessions';

export interface Truth {
  /** instance → client ID → online. */
  mqtt: Record<string, Record<string, boolean>>;
  mongodb: Record<string, { TotalCount: number; Clients: ClientConnection[] }>;
  /** The DAS Data object GetRedisAllSession would answer; `error` if a real Redis could not be read. */
  redis: Record<string, DasData | { error: string }>;
}

export async function collectTruth(
  nowMs: number,
  mqtt: MqttInstanceState[],
  mongodb: MongoInstanceState[],
  redis: RedisInstanceState[],
): Promise<Truth> {
  const truth: Truth = { mqtt: {}, mongodb: {}, redis: {} };
  for (const i of mqtt) truth.mqtt[i.id] = i.truth(nowMs);
  for (const i of mongodb) truth.mongodb[i.id] = i.truth(nowMs);
  await Promise.all(
    redis.map(async (i) => {
      try {
        truth.redis[i.id] = await i.data(nowMs);
      } catch (err) {
        truth.redis[i.id] = { error: (err as Error).message };
      }
    }),
  );
  return truth;
}
