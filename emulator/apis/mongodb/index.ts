// Emulated TencentDB for MongoDB (2019-07-25): DescribeClientConnections over simulated clients, the `mongodb:` key.
import type { EmulatedProduct } from '../../core/api';
import { MongoInstanceState } from './clients';
import { MongoApis, MONGODB_VERSION } from './handlers';
import { checkMongodbScenario, MONGODB_SCENARIO, mongodbInstances } from './scenario';

export const mongodbProduct: EmulatedProduct = {
  provider: 'tencentcloud',
  service: 'mongodb',
  truthKey: 'mongodb',
  apis: [{ name: 'DescribeClientConnections', version: MONGODB_VERSION, qps: 5 }],
  scenario: MONGODB_SCENARIO,
  check: checkMongodbScenario,
  async start({ scenario }) {
    const instances = mongodbInstances(scenario).map((c) => new MongoInstanceState(c, scenario.seed));
    return {
      tencent: new MongoApis(instances).apis(),
      truth: (nowMs) => Object.fromEntries(instances.map((i) => [i.id, i.truth(nowMs)])),
    };
  },
};
