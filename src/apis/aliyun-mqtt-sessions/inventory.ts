// The device inventory of an MQTT job: client IDs from the config and a file checked every run (read again when it
// changed), validated and de-duplicated. Bad lines are skipped and reported (the first few), never fatal.
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log';
import { checkClientId } from '../aliyun-mqtt/product';
import { fnv1a32 } from '../../util/hash';
import { YIELD_EVERY, yieldToEventLoop } from '../../util/yield';

/**
 * Client IDs packed into one string with their offsets: a million devices are then a handful of heap objects instead
 * of a million strings, which keeps the garbage collector's full pauses short (they grow with the number of live
 * objects, and stall scrapes and polls). The inventory holds its IDs this way, and so does a saved fleet state.
 */
export class PackedIds {
  readonly size: number;
  /** Changes whenever the set or order of IDs changes; equal keys mean identical lists. */
  readonly key: string;
  private readonly starts: Uint32Array;

  /** `text`: every ID, each followed by "\n" but the last. */
  constructor(readonly text: string) {
    let size = text === '' ? 0 : 1;
    for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) size++;
    this.size = size;
    this.starts = new Uint32Array(size + 1);
    let n = 0;
    if (size > 0) {
      this.starts[n++] = 0;
      for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) this.starts[n++] = at + 1;
    }
    this.starts[size] = text.length + 1;
    this.key = `${size}:${hashText(text)}`;
  }

  /** The i-th client ID (a slice of the packed text: cheap, short-lived). */
  id(i: number): string {
    return this.text.slice(this.starts[i], this.starts[i + 1] - 1);
  }
}

/** Valid, unique client IDs in first-seen order, packed (PackedIds), plus a group index per ID. */
export class Inventory {
  /** Number of client IDs. */
  readonly size: number;
  /** Distinct group IDs, in first-seen order. */
  readonly groupNames: readonly string[];
  /** Index into groupNames of each client ID. */
  readonly groupOf: Uint32Array;
  /** Changes whenever the set or order of IDs changes; equal keys mean identical inventories. */
  readonly key: string;
  readonly ids: PackedIds;

  constructor(
    ids: readonly string[],
    groupNames: readonly string[],
    groupOf: Uint32Array,
    readonly invalid: number,
  ) {
    this.ids = new PackedIds(ids.join('\n'));
    this.size = ids.length;
    this.groupNames = groupNames;
    this.groupOf = groupOf.length === ids.length ? groupOf : groupOf.slice(0, ids.length);
    this.key = this.ids.key;
  }

  /** The i-th client ID (a slice of the packed text: cheap, short-lived). */
  id(i: number): string {
    return this.ids.id(i);
  }

  /** Client IDs from..to-1. */
  slice(from: number, to: number): string[] {
    const out: string[] = [];
    for (let i = from; i < Math.min(to, this.size); i++) out.push(this.id(i));
    return out;
  }

  group(i: number): string {
    return this.groupNames[this.groupOf[i]];
  }
}

/**
 * The entries `owns` accepts (a cluster shard's devices), in the same order, with the same groups (a group without
 * devices in the shard still counts 0 here). Yields to the event loop now and then: a million IDs take a while.
 */
export async function shardOf(inv: Inventory, owns: (id: string) => boolean): Promise<Inventory> {
  const ids: string[] = [];
  const groupOf = new Uint32Array(inv.size);
  for (let i = 0; i < inv.size; i++) {
    const id = inv.id(i);
    if (owns(id)) {
      groupOf[ids.length] = inv.groupOf[i];
      ids.push(id);
    }
    if ((i + 1) % YIELD_EVERY === 0) await yieldToEventLoop();
  }
  return new Inventory(ids, inv.groupNames, groupOf.subarray(0, ids.length), inv.invalid);
}

/** How many rejected entries a parse lists one by one; the rest are only counted (a 1M-line file may have 200,000). */
const REJECTED_SHOWN = 5;

export interface Rejected {
  /** `client_ids[3]` or `devices.txt:17`. */
  where: string;
  id: string;
  reason: string;
}

export interface ParsedInventory {
  inventory: Inventory;
  /** The first REJECTED_SHOWN rejected entries; inventory.invalid counts them all. */
  rejected: Rejected[];
}

/**
 * The one inventory parser, for the running job and for --config.check alike: the config's IDs, then the file's
 * lines ('#' starts a comment, blank lines are skipped), validated by the client-ID rules and de-duplicated.
 */
function parseInventory(configIds: readonly string[], file?: { name: string; text: string }): ParsedInventory {
  const fileText = file?.text ?? '';
  // Peak memory matters at a million lines: no split() array, one group index per ID instead of a group string.
  let lines = 1;
  for (let at = fileText.indexOf('\n'); at >= 0; at = fileText.indexOf('\n', at + 1)) lines++;
  const groupOf = new Uint32Array(configIds.length + (file ? lines : 0));
  const groupIndex = new Map<string, number>();
  const ids: string[] = [];
  const seen = new Set<string>();
  const rejected: Rejected[] = [];
  let invalid = 0;
  const consider = (raw: string, where: () => string) => {
    const id = raw.trim();
    if (!id) return;
    const check = checkClientId(id);
    if (!check.ok) {
      invalid++;
      if (rejected.length < REJECTED_SHOWN) rejected.push({ where: where(), id: truncate(id), reason: check.reason });
      return;
    }
    if (seen.has(id)) return;
    seen.add(id);
    let g = groupIndex.get(check.groupId);
    if (g === undefined) groupIndex.set(check.groupId, (g = groupIndex.size));
    groupOf[ids.length] = g;
    ids.push(id);
  };
  configIds.forEach((id, i) => consider(id, () => `client_ids[${i}]`));
  if (file) {
    let lineNo = 0;
    let hash = -1;
    for (let start = 0; start <= fileText.length; ) {
      let end = fileText.indexOf('\n', start);
      if (end < 0) end = fileText.length;
      lineNo++;
      // The next '#' at or after this line's start, searched again only once passed (no quadratic scans).
      if (hash !== Infinity && hash < start) hash = fileText.indexOf('#', start);
      if (hash < 0) hash = Infinity;
      const line = lineNo;
      consider(fileText.slice(start, hash < end ? hash : end), () => `${file.name}:${line}`);
      start = end + 1;
    }
  }
  return { inventory: new Inventory(ids, [...groupIndex.keys()], groupOf, invalid), rejected };
}

/** The inventory as --config.check sees it: the same parser, the file read synchronously. Throws when unreadable. */
export function readInventorySync(configIds: readonly string[], file: string | undefined): ParsedInventory {
  return parseInventory(configIds, file === undefined ? undefined : { name: path.basename(file), text: fs.readFileSync(file, 'utf8') });
}

export class InventoryLoader {
  private cached: { signature: string; inventory: Inventory; stat?: { ino: number; size: number; mtimeMs: number; settled: boolean } } | undefined;

  constructor(
    private readonly configIds: readonly string[],
    private readonly file: string | undefined,
    private readonly logger: Logger,
  ) {}

  async load(): Promise<Inventory> {
    let fileText = '';
    let signature = 'config';
    let fileStat: { ino: number; size: number; mtimeMs: number; settled: boolean } | undefined;
    if (this.file) {
      // A missing or unreadable file is a failed run (the inventory is unknown), not an empty fleet.
      const stat = await fsp.stat(this.file);
      // Unchanged inode, size and mtime since a read made when the file had already been still for 2 s: the same
      // content (a later write would have moved the mtime), so a million-device file is not read again each cycle.
      const prev = this.cached?.stat;
      if (prev?.settled && prev.ino === stat.ino && prev.size === stat.size && prev.mtimeMs === stat.mtimeMs) return this.cached!.inventory;
      const text = await fsp.readFile(this.file, 'utf8');
      fileText = text;
      signature = `${stat.size}:${stat.mtimeMs}:${text.length}:${hashText(text)}`;
      fileStat = { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, settled: Date.now() - stat.mtimeMs > 2000 };
    }
    if (this.cached?.signature === signature) {
      this.cached.stat = fileStat;
      return this.cached.inventory;
    }
    const { inventory, rejected } = parseInventory(this.configIds, this.file ? { name: path.basename(this.file), text: fileText } : undefined);
    // Logged when the inventory changed (it is parsed only then): the first few with their lines, then a summary.
    for (const r of rejected) this.logger.warn({ where: r.where, client_id: r.id, reason: r.reason }, 'skipping invalid client ID in the inventory');
    if (inventory.invalid > 0) this.logger.warn({ invalid: inventory.invalid, valid: inventory.size, shown: rejected.length }, 'the inventory has invalid client IDs; they are skipped');
    this.cached = { signature, inventory, stat: fileStat };
    return inventory;
  }
}

function truncate(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}

function hashText(text: string): string {
  return fnv1a32(text).toString(16);
}
