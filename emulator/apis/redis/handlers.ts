// Database Autonomy Service (das 2020-01-16): GetRedisAllSession, with the response type quirks real answers have.
import { ApiError, type AliyunApi } from '../../core/api';
import type { RedisInstanceState } from './sessions';

export const DAS_VERSION = '2020-01-16';

export class DasRedisApis {
  private readonly instances = new Map<string, RedisInstanceState>();

  constructor(instances: RedisInstanceState[]) {
    for (const i of instances) this.instances.set(i.id, i);
  }


  apis(): AliyunApi[] {
    return [
      {
        name: 'GetRedisAllSession',
        version: DAS_VERSION,
        // DAS reports business failures at HTTP 200 with a numeric string code and Success false.
        injectedError: (code, requestId) =>
          /^-?\d+$/.test(code) ? { status: 200, body: { Code: code, Message: `Injected error ${code}.`, Success: false, RequestId: requestId } } : undefined,
        handle: async (call) => {
          const id = call.params.get('InstanceId');
          if (id === undefined || id === '') throw new ApiError('InvalidParams', 'The request parameters are invalid.');
          const inst = this.instances.get(id);
          if (inst === undefined) throw new ApiError('InvalidParams', 'The request parameters are invalid.');
          const cfg = inst.config;
          if (cfg.no_permission || (cfg.account !== undefined && cfg.account !== call.account)) {
            throw new ApiError('NoPermission', 'You are not authorized to do this action.', 403);
          }
          const code = cfg.code_as_string ? '200' : 200;
          if (cfg.business_failure === 'code') {
            // Business failures come back at HTTP 200, with a string code pop-core refuses.
            return {
              body: {
                Code: cfg.business_failure_code,
                Message: 'Failed to get the sessions of the instance.',
                Success: cfg.success_as_string ? 'false' : false,
                RequestId: call.requestId,
              },
              errorCode: cfg.business_failure_code,
            };
          }
          if (cfg.business_failure === 'success_false') {
            // Code 200 passes pop-core's check: only Success tells the caller it failed.
            return {
              body: { Code: code, Message: 'Failed to get the sessions of the instance.', Success: cfg.success_as_string ? 'false' : false, RequestId: call.requestId },
              errorCode: 'Success:false',
            };
          }
          let data;
          try {
            data = await inst.data(call.nowMs);
          } catch {
            throw new ApiError('InternalError', 'The request processing has failed due to some unknown error.', 500);
          }
          return {
            body: { Code: code, Message: 'Successful', Data: data, RequestId: call.requestId, Success: cfg.success_as_string ? 'true' : true },
          };
        },
      },
    ];
  }
}
