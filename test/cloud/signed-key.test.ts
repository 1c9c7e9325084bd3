// The Alibaba transport names the AccessKey each request is signed with (what an ApsaraMQ token is bound to), even
// when the credential changes between requests in flight together: checked against the key the emulator verified.
import { describe, expect, test } from 'vitest';
import { mqttOf } from '../../emulator/apis/mqtt';
import { AliyunRpcTransport } from '../../src/cloud/providers/aliyun';
import { ALIYUN, emulator } from '../helpers/harness';

const OTHER = { ...ALIYUN, access_key_id: 'LTAI-other-key-id', access_key_secret: 'other-secret-0123456789' };
const INSTANCE = 'post-cn-signed0001';

describe('CallRequest.onSigned', () => {
  test('40 concurrent calls while the credential alternates between two keys: each is told the key the cloud verified', async () => {
    const emu = await emulator({ credentials: [ALIYUN, OTHER], mqtt: { instances: [{ instance_id: INSTANCE }] } });
    let n = 0;
    // A different key at every read, as a refresh landing between two reads would give.
    const source = {
      getCredentials: async () => {
        const k = n++ % 2 === 0 ? ALIYUN : OTHER;
        return { accessKeyId: k.access_key_id, accessKeySecret: k.access_key_secret };
      },
    };
    const transport = new AliyunRpcTransport(source, emu.url, '2020-04-20', 1 << 20);
    try {
      const results = await Promise.all(
        Array.from({ length: 40 }, async () => {
          let signedWith: string | undefined;
          const body = (await transport.call({
            api: 'ApplyToken',
            params: { InstanceId: INSTANCE, Resources: 'canary/probe', Actions: 'R', ExpireTime: Date.now() + 120_000 },
            timeoutMs: 5000,
            onSigned: (keyId) => (signedWith = keyId),
          })) as { Token: string };
          return { signedWith, boundTo: mqttOf(emu).tokens.lookup(body.Token)?.accessKeyId };
        }),
      );
      for (const r of results) expect(r.signedWith).toBe(r.boundTo);
      expect(new Set(results.map((r) => r.signedWith))).toEqual(new Set([ALIYUN.access_key_id, OTHER.access_key_id]));
      // One read per request: pop-core signed with the key the transport read, not a second read of its own.
      expect(n).toBe(40);
    } finally {
      transport.close();
    }
  });
});
