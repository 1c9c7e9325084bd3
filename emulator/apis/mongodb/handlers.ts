// TencentDB for MongoDB (2019-07-25): DescribeClientConnections with pagination and its documented errors.
import { ApiError, type TencentApi, type TencentCall } from '../../core/api';
import type { MongoInstanceState } from './clients';
import type { MongoInstanceConfig } from './scenario';

export const MONGODB_VERSION = '2019-07-25';
const MAX_LIMIT = 1000;

const UNSUPPORTED: Record<string, { code: string; message: string }> = {
  MongoVersion: {
    code: 'InvalidParameterValue.MongoVersionNotSupportQueryClient',
    message: 'The instance version does not support querying the instance client information.',
  },
  Proxy: {
    code: 'InvalidParameterValue.ProxyNotSupportQueryClient',
    message: 'The proxy version does not support querying the instance client information. Please submit a ticket for upgrade.',
  },
  Region: {
    code: 'InvalidParameterValue.RegionNotSupportQueryClient',
    message: 'The region does not support querying the instance client information.',
  },
};

function intParam(call: TencentCall, name: string, fallback: number): number {
  const raw = call.params[name];
  if (raw === undefined || raw === null) return fallback;
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (call.paramsFromQuery && typeof raw === 'string' && /^-?\d+$/.test(raw)) n = Number(raw);
  else throw new ApiError('InvalidParameter', `The type of parameter \`${name}\` is invalid: an integer is required.`);
  if (!Number.isInteger(n)) throw new ApiError('InvalidParameter', `The type of parameter \`${name}\` is invalid: an integer is required.`);
  return n;
}

/** The TotalCount an answer carries (scenario key `total_count`); undefined: none. */
function reportedTotal(mode: MongoInstanceConfig['total_count'], records: number): number | undefined {
  if (mode === 'correct') return records;
  if (mode === 'zero') return 0;
  if (mode === 'absent') return undefined;
  return Math.max(0, records + mode.off_by);
}

export class MongoApis {
  private readonly instances = new Map<string, MongoInstanceState>();

  constructor(instances: MongoInstanceState[]) {
    for (const i of instances) this.instances.set(i.id, i);
  }


  apis(): TencentApi[] {
    return [
      {
        name: 'DescribeClientConnections',
        version: MONGODB_VERSION,
        handle: (call) => {
          const id = call.params.InstanceId;
          if (id === undefined || id === null || id === '') {
            throw new ApiError('MissingParameter', 'The request is missing a required parameter `InstanceId`.');
          }
          if (typeof id !== 'string') throw new ApiError('InvalidParameter', 'The type of parameter `InstanceId` is invalid: a string is required.');
          const limit = intParam(call, 'Limit', MAX_LIMIT);
          const offset = intParam(call, 'Offset', 0);
          if (limit < 1 || limit > MAX_LIMIT) {
            throw new ApiError('InvalidParameterValue', `The value of parameter \`Limit\` must be between 1 and ${MAX_LIMIT}.`);
          }
          if (offset < 0) throw new ApiError('InvalidParameterValue', 'The value of parameter `Offset` must not be negative.');
          const inst = this.instances.get(id);
          const visible =
            inst !== undefined &&
            (inst.config.account === undefined || inst.config.account === call.account) &&
            (call.region === undefined || call.region === inst.config.region);
          if (!visible) throw new ApiError('InvalidParameterValue.NotFoundInstance', 'The instance was not found.');
          if (inst.config.permission_denied) {
            throw new ApiError('InvalidParameter.PermissionDenied', 'The current subaccount has no permission to perform this operation.');
          }
          if (inst.config.unsupported !== undefined) {
            const u = UNSUPPORTED[inst.config.unsupported] as { code: string; message: string };
            throw new ApiError(u.code, u.message);
          }
          const total = reportedTotal(inst.config.total_count, inst.length());
          return {
            body: { Clients: inst.page(offset, limit, call.nowMs), ...(total === undefined ? {} : { TotalCount: total }), RequestId: call.requestId },
            afterSend: () => inst.mutate(),
          };
        },
      },
    ];
  }
}
