// ApsaraMQ for MQTT client ID rules: `<GroupID>@@@<DeviceID>`, at most 64 characters; the Group ID starts with
// GID_ or GID-, is 7-64 characters of letters, digits, '-' and '_'.
const GROUP_ID = /^GID[_-][A-Za-z0-9_-]{3,60}$/;
const DEVICE_ID = /^[A-Za-z0-9_.:-]+$/;
export const MAX_CLIENT_ID_LENGTH = 64;

export type ClientIdCheck = { ok: true; groupId: string } | { ok: false; reason: string };

export function checkClientId(id: string): ClientIdCheck {
  if (id.length > MAX_CLIENT_ID_LENGTH) return { ok: false, reason: `longer than ${MAX_CLIENT_ID_LENGTH} characters` };
  const sep = id.indexOf('@@@');
  if (sep < 0) return { ok: false, reason: 'missing the @@@ between Group ID and Device ID' };
  const groupId = id.slice(0, sep);
  const deviceId = id.slice(sep + 3);
  if (!GROUP_ID.test(groupId)) return { ok: false, reason: `Group ID "${groupId}" must start with GID_ or GID- and be 7-64 letters, digits, - or _` };
  if (!deviceId) return { ok: false, reason: 'empty Device ID' };
  if (!DEVICE_ID.test(deviceId)) return { ok: false, reason: 'Device ID may contain only letters, digits and _ . : -' };
  return { ok: true, groupId };
}
