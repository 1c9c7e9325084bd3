// Online status of simulated ApsaraMQ for MQTT devices: computed per device from the seed and the clock, never stored per device.
import { hashInts, hashString, unitHash } from '../../core/prng';
import type { FleetConfig, MqttInstanceConfig } from './scenario';

const NO_OVERRIDE = -1;

/**
 * A fleet is `size` devices named `<group_id>@@@<prefix><n>` with n zero-padded to `digits`
 * (default max(6, digits of size)) and numbered from 1. Each device re-draws its status from a hash of
 * (seed, device, time slot); slots are staggered per device, and their length is chosen so that the
 * expected share of devices changing status per minute is `churn_per_minute` while the online share stays
 * `online_ratio`. Nothing runs in the background: a status is computed when asked.
 */
class FleetState {
  readonly digits: number;
  private readonly seed: number;
  private readonly slotMs: number;
  /** Allocated on the first manual flip: 1 byte per device, -1 = follow the simulation. */
  private overrides: Int8Array | undefined;

  constructor(
    readonly config: FleetConfig,
    scenarioSeed: number,
    instanceId: string,
  ) {
    this.digits = config.digits ?? Math.max(6, String(config.size).length);
    this.seed = hashInts(scenarioSeed, hashString(`${instanceId}/${config.group_id}/${config.prefix}`));
    const p = config.online_ratio;
    const flipPerRedraw = 2 * p * (1 - p);
    this.slotMs =
      config.churn_per_minute > 0 && flipPerRedraw > 0 ? Math.max(1, (60_000 * flipPerRedraw) / config.churn_per_minute) : Infinity;
  }

  clientId(n: number): string {
    return `${this.config.group_id}@@@${this.config.prefix}${String(n).padStart(this.digits, '0')}`;
  }

  /** Device number (1-based) from the part after "@@@", or -1 if it is not one of this fleet's devices. */
  deviceNumber(devicePart: string): number {
    const prefix = this.config.prefix;
    if (devicePart.length !== prefix.length + this.digits || !devicePart.startsWith(prefix)) return -1;
    let n = 0;
    for (let i = prefix.length; i < devicePart.length; i++) {
      const d = devicePart.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return -1;
      n = n * 10 + d;
    }
    return n >= 1 && n <= this.config.size ? n : -1;
  }

  isOnline(n: number, nowMs: number): boolean {
    if (this.overrides !== undefined) {
      const o = this.overrides[n - 1] as number;
      if (o !== NO_OVERRIDE) return o === 1;
    }
    const p = this.config.online_ratio;
    if (this.slotMs === Infinity) return unitHash(this.seed, n) < p;
    const phase = unitHash(this.seed, n, 0x51ab) * this.slotMs;
    const slot = Math.floor((nowMs + phase) / this.slotMs);
    return unitHash(this.seed, n, slot, 0x7e57) < p;
  }

  /** Pins a device's status until the emulator stops (churn no longer moves it). */
  setOnline(n: number, online: boolean): void {
    if (this.overrides === undefined) this.overrides = new Int8Array(this.config.size).fill(NO_OVERRIDE);
    this.overrides[n - 1] = online ? 1 : 0;
  }
}

export class MqttInstanceState {
  readonly id: string;
  private readonly fleetsByGroup = new Map<string, FleetState[]>();
  private readonly fleets: FleetState[] = [];
  /** Explicit clients and manual flips of IDs outside every fleet. */
  private readonly explicit = new Map<string, boolean>();

  constructor(
    readonly config: MqttInstanceConfig,
    scenarioSeed: number,
  ) {
    this.id = config.instance_id;
    for (const f of config.fleets) {
      const fleet = new FleetState(f, scenarioSeed, config.instance_id);
      this.fleets.push(fleet);
      const list = this.fleetsByGroup.get(f.group_id) ?? [];
      list.push(fleet);
      this.fleetsByGroup.set(f.group_id, list);
    }
    for (const c of config.clients) this.explicit.set(c.client_id, c.online);
  }

  private locate(clientId: string): { fleet: FleetState; n: number } | undefined {
    const at = clientId.indexOf('@@@');
    if (at < 0) return undefined;
    const candidates = this.fleetsByGroup.get(clientId.slice(0, at));
    if (candidates === undefined) return undefined;
    const devicePart = clientId.slice(at + 3);
    for (const fleet of candidates) {
      const n = fleet.deviceNumber(devicePart);
      if (n > 0) return { fleet, n };
    }
    return undefined;
  }

  /** Unknown client IDs are offline, as the service answers for devices that never connected. */
  isOnline(clientId: string, nowMs: number): boolean {
    const explicit = this.explicit.get(clientId);
    if (explicit !== undefined) return explicit;
    const hit = this.locate(clientId);
    return hit === undefined ? false : hit.fleet.isOnline(hit.n, nowMs);
  }

  setOnline(clientId: string, online: boolean): void {
    const hit = this.explicit.has(clientId) ? undefined : this.locate(clientId);
    if (hit === undefined) this.explicit.set(clientId, online);
    else hit.fleet.setOnline(hit.n, online);
  }

  truth(nowMs: number): Record<string, boolean> {
    const out: Record<string, boolean> = {};
    for (const fleet of this.fleets) {
      for (let n = 1; n <= fleet.config.size; n++) out[fleet.clientId(n)] = fleet.isOnline(n, nowMs);
    }
    for (const [id, online] of this.explicit) out[id] = online;
    return out;
  }
}
