// What the fault suite's files share: the secrets (with the characters encodings change), the emulator scenario,
// the exporter's environment and its configuration with both providers' transports behind their own endpoints.
/** Secrets with the characters encodings change (+ / =), as STS tokens and generated keys have them. */
export const SECRETS = {
  ak: 'LTAI5tQ9vFaultSuiteKey',
  sk: 'Zq3+fX8/wL2mN7pR4sT6=vY1uE5oI9aK',
  token: 'CAIS8wF1q6Ft5B2yfSjIr5b+Kd/fj1U2LevbUPz=jUQlTcdrhLbuhzz2IHhMf3dsAe0csvQ2m2hZ7',
  tid: 'AKIDfaultSuite0Tencent77',
  tkey: 'tK9+mW2/qR7=zX4vB8nL1pS6cF3hJ0dG',
  ttoken: 'tcTok+9Wq/2Rz=7Xv4Bn8Lp1Sc6Fh3Jd0GmK5yT',
};
const INSTANCE = 'post-cn-fault0001';
const MONGO = 'cmgo-fault0001';
const DEVICES = Array.from({ length: 50 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);
export const GRACE_MS = 2000;

export const SCENARIO = {
  credentials: [
    { account: 'ali', provider: 'aliyun', access_key_id: SECRETS.ak, access_key_secret: SECRETS.sk, security_token: SECRETS.token },
    { account: 'ten', provider: 'tencentcloud', secret_id: SECRETS.tid, secret_key: SECRETS.tkey, token: SECRETS.ttoken },
  ],
  mqtt: { instances: [{ instance_id: INSTANCE, fleets: [{ group_id: 'GID_sensor', size: 50, online_ratio: 0.5 }] }] },
  mongodb: { instances: [{ instance_id: MONGO, region: 'ap-guangzhou', client_ips: 40 }] },
};

export const ENV = {
  AK: SECRETS.ak,
  SK: SECRETS.sk,
  TOKEN: SECRETS.token,
  TID: SECRETS.tid,
  TKEY: SECRETS.tkey,
  TTOKEN: SECRETS.ttoken,
  // As the image and the manifests run it: socket read buffers (64 KiB) go back to the OS when freed, so memory
  // returns to its baseline after a huge answer instead of staying in the allocator (README, "Memory").
  MALLOC_MMAP_THRESHOLD_: '65536',
};

/** Both providers' transports, each behind its own endpoint, polled every second. */
export function suiteConfig(aliyunEndpoint: string, tencentEndpoint: string, extra = ''): string {
  return `accounts:
  - name: ali
    provider: aliyun
    access_key_id: \${AK}
    access_key_secret: \${SK}
    security_token: \${TOKEN}
    request_timeout: 400ms
    max_response_size: 8MiB${extra}
  - name: ten
    provider: tencentcloud
    secret_id: \${TID}
    secret_key: \${TKEY}
    token: \${TTOKEN}
    request_timeout: 400ms
    max_response_size: 8MiB
jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: ali
    schedule: "* * * * * *"
    region: cn-hangzhou
    endpoint: ${aliyunEndpoint}
    instance_id: ${INSTANCE}
    client_ids: ${JSON.stringify(DEVICES)}
  - name: mongo
    type: tencentcloud_mongodb_connections
    account: ten
    schedule: "* * * * * *"
    region: ap-guangzhou
    endpoint: ${tencentEndpoint}
    instance_ids: [${MONGO}]
`;
}

