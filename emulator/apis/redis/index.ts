// Emulated DAS GetRedisAllSession (2020-01-16) over synthetic or real Redis sessions, the `redis:` scenario key.
import type { EmulatedProduct } from '../../core/api';
import { DasRedisApis, DAS_VERSION } from './handlers';
import { checkRedisScenario, REDIS_SCENARIO, redisInstances } from './scenario';
import { RedisInstanceState } from './sessions';

export const redisProduct: EmulatedProduct = {
  provider: 'aliyun',
  truthKey: 'redis',
  // DAS documents no QPS for GetRedisAllSession; the emulator allows 10/s so the exporter's 5/s default is tested under a limit.
  apis: [{ name: 'GetRedisAllSession', version: DAS_VERSION, qps: 10 }],
  scenario: REDIS_SCENARIO,
  errors: {
  InvalidParams: { status: 400, message: 'The request parameters are invalid.' },
  NoPermission: { status: 403, message: 'You are not authorized to do this action.' },
  },
  check: checkRedisScenario,
  async start({ scenario }) {
    const instances = redisInstances(scenario).map((c) => new RedisInstanceState(c, scenario.seed));
    return {
      aliyun: new DasRedisApis(instances).apis(),
      truth: async (nowMs) => {
        const out: Record<string, unknown> = {};
        await Promise.all(
          instances.map(async (i) => {
            try {
              out[i.id] = await i.data(nowMs);
            } catch (err) {
              out[i.id] = { error: (err as Error).message };
            }
          }),
        );
        return out;
      },
    };
  },
};
