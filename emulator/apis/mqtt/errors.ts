// The error codes the ApsaraMQ for MQTT OpenAPI documents, with their HTTP status and message, stated once: the
// handlers raise them and injected faults (the product's `errors`) look the same.
//
// The codes of the first group are the API documents' tables (shared/seeds), with the statuses of the announced
// change (SystemOverFlow, the API's throttling, 500 -> 403; InternalError 500 -> 417 is in the gateway's catalog,
// shared with the other products). The second group was added by the "MQTT OpenAPI status code"
// announcement (research/production-edges.md), which gives codes and statuses but no messages: those are ours.
import { ApiError } from '../../core/api';

export const MQTT_ERRORS = {
  SystemOverFlow: { status: 403, message: 'An error occurred while processing your request. Please try again.' },
  SendMessageFailed: { status: 417, message: 'A storage exception occurred while sending the message. Please try again.' },
  ApiNotSupport: { status: 404, message: 'The specified API is not supported.' },
  CheckAccountInfoFailed: { status: 400, message: 'An error occurred while checking the account information by the STS token.' },
  InstancePermissionCheckFailed: {
    status: 400,
    message: 'An error occurred while validating the permissions of the instance. Please verify the account that created the instance and its permissions settings.',
  },
  ParameterCheckFailed: { status: 400, message: 'An error occurred while validating the parameters. The parameters may be missing or invalid.' },
  PermissionCheckFailed: {
    status: 400,
    message: 'An error occurred while validating the resource permissions. Please check the account that created the instance, topic, and GroupId, and check their permission settings.',
  },

  MqttInstanceNotFound: { status: 400, message: 'The specified ApsaraMQ for MQTT instance does not exist.' },
  MqttOwnerCheckError: { status: 403, message: 'The ApsaraMQ for MQTT instance does not belong to the account that signed the request.' },
  ParameterFieldCheckFailed: { status: 400, message: 'A parameter field failed validation: a value is too long or too large.' },
} as const satisfies Record<string, { status: number; message: string }>;

/** The documented error `code`; `detail` (what exactly is wrong) is appended to its message. */
export function mqttError(code: keyof typeof MQTT_ERRORS, detail?: string): ApiError {
  const { status, message } = MQTT_ERRORS[code];
  return new ApiError(code, detail ? `${message} ${detail}` : message, status);
}
