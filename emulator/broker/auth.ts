// ApsaraMQ for MQTT sign-in as the emulator's broker checks it (kept apart from the exporter's own code so that tests
// compare two implementations): username `<Mode>|<AccessKeyId>|<InstanceId>`; in Signature mode the password is
// Base64(HMAC-SHA1(AccessKeySecret, clientId)), in Token mode token pairs (tokens.ts); client ID
// `<GroupId>@@@<DeviceId>` (Group ID `GID_…` or `GID-…`).
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signatureCredentials(accessKeyId: string, accessKeySecret: string, instanceId: string, clientId: string): { username: string; password: string } {
  return { username: `Signature|${accessKeyId}|${instanceId}`, password: createHmac('sha1', accessKeySecret).update(clientId, 'utf8').digest('base64') };
}

export type SignInMode = 'Signature' | 'Token';

export function parseUsername(username: string | undefined): { mode: SignInMode; accessKeyId: string; instanceId: string } | undefined {
  const parts = username?.split('|');
  if (parts?.length !== 3 || (parts[0] !== 'Signature' && parts[0] !== 'Token') || !parts[1] || !parts[2]) return undefined;
  return { mode: parts[0], accessKeyId: parts[1], instanceId: parts[2] };
}

export function isValidClientId(clientId: string): boolean {
  // A Group ID starts with GID_ or GID- (both documented).
  return /^GID[_-][A-Za-z0-9_-]+@@@[A-Za-z0-9_.:-]+$/.test(clientId) && clientId.length <= 64;
}

export function passwordMatches(secret: string, clientId: string, password: Buffer | undefined): boolean {
  if (password === undefined) return false;
  const expected = Buffer.from(createHmac('sha1', secret).update(clientId, 'utf8').digest('base64'));
  return expected.length === password.length && timingSafeEqual(expected, password);
}
