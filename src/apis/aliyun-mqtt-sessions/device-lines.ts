// The per-device families of an inventory, rendered without a label-set object per device. aliyun_mqtt_client_online
// is one line per device in the declared label layout, rendered once per inventory and patched per poll
// (binary-gauge-lines.ts); the job and the scrape benchmark both render it here. aliyun_mqtt_client_last_change_
// timestamp_seconds has a line only per device seen changing, so its lines are written anew each poll.
import { BinaryGaugeLines } from '../../metrics/binary-gauge-lines';
import { labelNamesOf, renderDeclaredPrefix, type FamilyDecl } from '../../metrics/declare';
import { escapeLabelValue, FamilyBuilder, joinLabels, type MetricFamily } from '../../metrics/family';
import { CLIENT_LAST_CHANGE, CLIENT_ONLINE } from './families';
import type { FleetState } from './fleet-state';
import type { Inventory } from './inventory';
import { YIELD_EVERY, yieldToEventLoop } from '../../util/yield';

type Where = { region: string; instance_id: string };

/** Label sets `region, instance_id, group_id, client_id` + static labels of a per-device family, for one inventory. */
class DeviceLabels {
  private checkedKey: string | undefined;

  constructor(
    private readonly decl: FamilyDecl,
    private readonly where: Where,
    private readonly staticLabels: string,
  ) {}

  of(inv: Inventory): (i: number) => string {
    // Label sets per group rendered once; the client ID, the last declared label, is the one that differs per line.
    const groups = inv.groupNames.map((group_id) => renderDeclaredPrefix(this.decl, { ...this.where, group_id }));
    const labelsOf = (i: number): string => joinLabels(groups[inv.groupOf[i]], `client_id="${escapeLabelValue(inv.id(i))}"`, this.staticLabels);
    if (this.checkedKey !== inv.key && inv.size > 0) {
      // Rendered without a builder: its first line is checked against the declaration once per inventory.
      const names = labelNamesOf(`x{${labelsOf(0)}}`);
      const expected = [...this.decl.labels, ...labelNamesOf(`x{${this.staticLabels}}`)];
      if (names.join() !== expected.join()) throw new Error(`${this.decl.name}: rendered labels ${names.join()} differ from the declared ${expected.join()}`);
      this.checkedKey = inv.key;
    }
    return labelsOf;
  }
}

export class DeviceLines {
  private readonly lines = new BinaryGaugeLines(CLIENT_ONLINE.name, CLIENT_ONLINE.help);
  private readonly labels: DeviceLabels;

  constructor(where: Where, staticLabels: string) {
    this.labels = new DeviceLabels(CLIENT_ONLINE, where, staticLabels);
  }

  /** The family for `status` (1 online, NO_VALUE no line this poll, anything else offline), one line per inventory entry. */
  async render(inv: Inventory, status: Uint8Array): Promise<MetricFamily> {
    return this.lines.render(inv.key, inv.size, this.labels.of(inv), status);
  }

  /** Drops the rendered lines (per-device series turned off). */
  clear(): void {
    this.lines.clear();
  }
}

export class LastChangeLines {
  private readonly labels: DeviceLabels;

  constructor(where: Where, staticLabels: string) {
    this.labels = new DeviceLabels(CLIENT_LAST_CHANGE, where, staticLabels);
  }

  /** A line per device of `inv` seen changing, its value the time of that change; `state` aligned with `inv`. */
  async render(inv: Inventory, state: FleetState): Promise<MetricFamily> {
    const labelsOf = this.labels.of(inv);
    const family = new FamilyBuilder(CLIENT_LAST_CHANGE.name, CLIENT_LAST_CHANGE.help, CLIENT_LAST_CHANGE.type);
    for (let i = 0; i < inv.size; i++) {
      const t = state.lastChange(i);
      if (t !== undefined) family.sample(labelsOf(i), t);
      if ((i + 1) % YIELD_EVERY === 0) await yieldToEventLoop();
    }
    return family.build();
  }
}
