// Simulated devices as real MQTT connections: K clients `<group_id>@@@<prefix><n>` signed in the ApsaraMQ way.
import mqtt, { type MqttClient } from 'mqtt';
import { signatureCredentials } from './auth';

export interface DeviceClientsOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  instanceId: string;
  accessKeyId: string;
  accessKeySecret: string;
  groupId: string;
  /** Devices are `<groupId>@@@<prefix><n>` for n = 1..count. */
  prefix?: string;
  count: number;
  /** Reconnect period of each device after a lost connection (ms); 0 = never reconnect. Default 1000. */
  reconnectPeriodMs?: number;
  /** How long to wait for every device to connect (ms, default 10 s). */
  connectTimeoutMs?: number;
}

export class DeviceClients {
  constructor(
    readonly clientIds: readonly string[],
    private readonly clients: readonly MqttClient[],
  ) {}

  connected(): string[] {
    return this.clientIds.filter((_, i) => this.clients[i].connected);
  }

  /** Ends one device's connection for good (a clean DISCONNECT; no reconnect). */
  async disconnect(clientId: string): Promise<void> {
    const i = this.clientIds.indexOf(clientId);
    if (i < 0) throw new Error(`no device ${clientId}`);
    await this.clients[i].endAsync();
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.endAsync(true)));
  }
}

/** Connects the devices; resolves once all are connected, rejects (closing them) on a refusal or the timeout. */
export async function connectDevices(opts: DeviceClientsOptions): Promise<DeviceClients> {
  const prefix = opts.prefix ?? 'dev-';
  const ids = Array.from({ length: opts.count }, (_, i) => `${opts.groupId}@@@${prefix}${i + 1}`);
  const clients = ids.map((clientId) =>
    mqtt.connect(opts.url, {
      protocolVersion: 4,
      clientId,
      ...signatureCredentials(opts.accessKeyId, opts.accessKeySecret, opts.instanceId, clientId),
      clean: true,
      reconnectPeriod: opts.reconnectPeriodMs ?? 1000,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      timerVariant: 'native',
    }),
  );
  const devices = new DeviceClients(ids, clients);
  try {
    await Promise.all(
      clients.map(
        (c) =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`device ${c.options.clientId} did not connect`)), opts.connectTimeoutMs ?? 10_000);
            c.once('connect', () => {
              clearTimeout(timer);
              resolve();
            });
            c.on('error', (err) => {
              clearTimeout(timer);
              reject(err);
            });
          }),
      ),
    );
  } catch (err) {
    await devices.close();
    throw err;
  }
  // Later errors (a restarted broker) only mean a reconnect; they must not crash the process.
  for (const c of clients) c.removeAllListeners('error').on('error', () => undefined);
  return devices;
}
