// An MQTT instance whose session APIs report the embedded broker's real connection state (`status_from_broker: true`):
// a device is online exactly while it holds a connection to the broker.
import type { MqttBroker } from '../../broker/broker';
import { MqttInstanceState } from './fleet';
import type { MqttInstanceConfig } from './scenario';

export class BrokerBackedMqttInstance extends MqttInstanceState {
  constructor(
    config: MqttInstanceConfig,
    scenarioSeed: number,
    private readonly broker: MqttBroker,
  ) {
    super(config, scenarioSeed);
  }

  override isOnline(clientId: string): boolean {
    return this.broker.isConnected(this.id, clientId);
  }

  /** Only going offline can be forced: the broker drops the device's connection. */
  override setOnline(clientId: string, online: boolean): void {
    if (online) throw new Error(`instance ${this.id} takes device status from the broker: connect ${clientId} to bring it online`);
    this.broker.disconnectClient(this.id, clientId);
  }

  /** The simulated fleet's devices (offline unless connected) plus every client connected to the broker. */
  override truth(nowMs: number): Record<string, boolean> {
    const out: Record<string, boolean> = {};
    for (const id of Object.keys(super.truth(nowMs))) out[id] = false;
    for (const id of this.broker.connectedClients(this.id)) out[id] = true;
    return out;
  }
}
