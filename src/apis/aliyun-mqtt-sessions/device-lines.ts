// aliyun_mqtt_client_online for a whole inventory: one line per device in the declared label layout, rendered once
// per inventory and patched per poll (binary-gauge-lines.ts). The job and the scrape benchmark both render it here.
import { BinaryGaugeLines } from '../../metrics/binary-gauge-lines';
import { labelNamesOf, renderDeclaredPrefix } from '../../metrics/declare';
import { escapeLabelValue, joinLabels, type MetricFamily } from '../../metrics/family';
import { CLIENT_ONLINE } from './families';
import type { Inventory } from './inventory';

export class DeviceLines {
  private readonly lines = new BinaryGaugeLines(CLIENT_ONLINE.name, CLIENT_ONLINE.help);
  private checkedKey: string | undefined;

  constructor(
    private readonly where: { region: string; instance_id: string },
    private readonly staticLabels: string,
  ) {}

  /** The family for `status` (1 online, NO_VALUE no line this poll, anything else offline), one line per inventory entry. */
  async render(inv: Inventory, status: Uint8Array): Promise<MetricFamily> {
    // Label sets per group rendered once; the client ID, the last declared label, is the one that differs per line.
    const groups = inv.groupNames.map((group_id) => renderDeclaredPrefix(CLIENT_ONLINE, { ...this.where, group_id }));
    const labelsOf = (i: number): string => joinLabels(groups[inv.groupOf[i]], `client_id="${escapeLabelValue(inv.id(i))}"`, this.staticLabels);
    if (this.checkedKey !== inv.key && inv.size > 0) {
      // Rendered without a builder: its first line is checked against the declaration once per inventory.
      const names = labelNamesOf(`x{${labelsOf(0)}}`);
      const expected = [...CLIENT_ONLINE.labels, ...labelNamesOf(`x{${this.staticLabels}}`)];
      if (names.join() !== expected.join()) throw new Error(`${CLIENT_ONLINE.name}: rendered labels ${names.join()} differ from the declared ${expected.join()}`);
      this.checkedKey = inv.key;
    }
    return this.lines.render(inv.key, inv.size, labelsOf, status);
  }

  /** Drops the rendered lines (per-device series turned off). */
  clear(): void {
    this.lines.clear();
  }
}
