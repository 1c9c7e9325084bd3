// The device inventory of an MQTT job: client IDs from the config and a file re-read every run, validated and
// de-duplicated. Bad lines are skipped and reported once, never fatal.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log';
import { checkClientId } from './mqtt-client-id';

export interface Inventory {
  /** Valid, unique client IDs, in first-seen order. */
  readonly ids: readonly string[];
  /** Group ID of each entry of ids. */
  readonly groups: readonly string[];
  readonly invalid: number;
  /** Changes whenever the set or order of ids changes; equal keys mean identical inventories. */
  readonly key: string;
}

export class InventoryLoader {
  private readonly reported = new Set<string>();
  private cached: { signature: string; inventory: Inventory } | undefined;

  constructor(
    private readonly configIds: readonly string[],
    private readonly file: string | undefined,
    private readonly logger: Logger,
  ) {}

  async load(): Promise<Inventory> {
    let fileText = '';
    let signature = 'config';
    if (this.file) {
      // A missing or unreadable file is a failed run (the inventory is unknown), not an empty fleet.
      const [stat, text] = await Promise.all([fsp.stat(this.file), fsp.readFile(this.file, 'utf8')]);
      fileText = text;
      signature = `${stat.size}:${stat.mtimeMs}:${text.length}:${hashText(text)}`;
    }
    if (this.cached?.signature === signature) return this.cached.inventory;
    const inventory = this.parse(fileText);
    this.cached = { signature, inventory };
    return inventory;
  }

  private parse(fileText: string): Inventory {
    const ids: string[] = [];
    const groups: string[] = [];
    const seen = new Set<string>();
    let invalid = 0;
    const consider = (raw: string, where: string) => {
      const id = raw.trim();
      if (!id) return;
      const check = checkClientId(id);
      if (!check.ok) {
        invalid++;
        const key = `${where}\u0000${id}`;
        if (!this.reported.has(key)) {
          this.reported.add(key);
          this.logger.warn({ where, client_id: truncate(id), reason: check.reason }, 'skipping invalid client ID in the inventory');
        }
        return;
      }
      if (seen.has(id)) return;
      seen.add(id);
      ids.push(id);
      groups.push(check.groupId);
    };
    this.configIds.forEach((id, i) => consider(id, `client_ids[${i}]`));
    if (this.file) {
      const name = path.basename(this.file);
      let lineNo = 0;
      for (const line of fileText.split('\n')) {
        lineNo++;
        const hash = line.indexOf('#');
        consider(hash >= 0 ? line.slice(0, hash) : line, `${name}:${lineNo}`);
      }
    }
    return { ids, groups, invalid, key: `${ids.length}:${hashText(ids.join('\n'))}` };
  }
}

function truncate(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}

/** FNV-1a: cheap change detection for inventories, not security. */
function hashText(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16);
}
