// What an aliyun_mqtt_sessions job publishes for the other replicas of a cluster (core/job-type.ts JobHandover), in
// versioned sections: the last poll's statuses as a bitset keyed by the inventory's hash (1 bit a device: 125 KB for
// a million; the few devices a partial answer left without a status listed apart with their last known status, so
// the next leader counts their transitions as this one would have), and the counters' bases. A section added later
// (e.g. last-change times) gets a name of its own; replicas that do not know it skip it. The per-device history
// (fleet-state.ts: since when each status holds, whether a change was seen, flapping slices; 18 B a device) travels
// deflated in its own section, so offline durations, top flappers and last changes survive a failover too.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { FleetSnapshot } from './fleet-state';
import type { PackedIds } from './inventory';
import { littleEndian, readLittleEndian } from './state-file';

// On libuv's thread pool: a million devices' history is tens of MB, too much to compress on the event loop each run.
const deflateRaw = promisify(zlib.deflateRaw);
const inflateRaw = promisify(zlib.inflateRaw);

/** Statuses: 1 bit a device (online), then the devices without a status in the poll and their last known status. */
export const STATUS_SECTION = 'status.v1';
/** Transitions and gaps per group, unexpected IDs: JSON. */
export const COUNTERS_SECTION = 'counters.v1';
/** The per-device history, aligned with the inventory: a JSON header, then its arrays; deflated. */
export const FLEET_SECTION = 'fleet.v1';

const ONLINE = 1;
/** No status in the poll's answer (job.ts STATUS_NO_ANSWER); as a last known status: never answered. */
const NO_ANSWER = 2;

/**
 * `status`: the poll's statuses (0 offline, 1 online, 2 none); `known`: each device's last answered status, which
 * differs from `status` only where the poll gave none.
 */
export function encodeStatus(inventoryKey: string, status: Uint8Array, known: Uint8Array): Uint8Array {
  const key = Buffer.from(inventoryKey, 'utf8');
  const n = status.length;
  const gaps: number[] = [];
  for (let i = 0; i < n; i++) if (status[i] === NO_ANSWER) gaps.push(i);
  const bitsAt = 2 + key.length + 4;
  const gapsAt = bitsAt + Math.ceil(n / 8);
  const out = Buffer.alloc(gapsAt + 4 + gaps.length * 5);
  out.writeUInt16BE(key.length, 0);
  key.copy(out, 2);
  out.writeUInt32BE(n, 2 + key.length);
  for (let i = 0; i < n; i++) if (status[i] === ONLINE) out[bitsAt + (i >> 3)] |= 1 << (i & 7);
  out.writeUInt32BE(gaps.length, gapsAt);
  gaps.forEach((i, k) => {
    out.writeUInt32BE(i, gapsAt + 4 + k * 5);
    out[gapsAt + 8 + k * 5] = known[i];
  });
  return out;
}

/** The statuses for an inventory of this key and size; undefined when the publisher's inventory was another. */
export function decodeStatus(bytes: Uint8Array, inventoryKey: string, size: number): { status: Uint8Array; known: Uint8Array } | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keyLen = buf.readUInt16BE(0);
  if (buf.toString('utf8', 2, 2 + keyLen) !== inventoryKey) return undefined;
  const n = buf.readUInt32BE(2 + keyLen);
  if (n !== size) return undefined;
  const bitsAt = 2 + keyLen + 4;
  const gapsAt = bitsAt + Math.ceil(n / 8);
  const status = new Uint8Array(n);
  for (let i = 0; i < n; i++) status[i] = (buf[bitsAt + (i >> 3)] >> (i & 7)) & 1;
  const known = status.slice();
  const gaps = buf.readUInt32BE(gapsAt);
  for (let k = 0; k < gaps; k++) {
    const i = buf.readUInt32BE(gapsAt + 4 + k * 5);
    status[i] = NO_ANSWER;
    known[i] = buf[gapsAt + 8 + k * 5];
  }
  return { status, known };
}

export interface Counters {
  transitions: ReadonlyMap<string, { online: number; offline: number }>;
  missing: ReadonlyMap<string, number>;
  unexpected: number;
}

export function encodeCounters(c: Counters): Uint8Array {
  return Buffer.from(JSON.stringify({ transitions: [...c.transitions], missing: [...c.missing], unexpected: c.unexpected }), 'utf8');
}

export function decodeCounters(bytes: Uint8Array): Counters {
  const raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as {
    transitions: Array<[string, { online: number; offline: number }]>;
    missing: Array<[string, number]>;
    unexpected: number;
  };
  return { transitions: new Map(raw.transitions.map(([g, t]) => [g, { online: t.online, offline: t.offline }])), missing: new Map(raw.missing), unexpected: raw.unexpected };
}

interface FleetHeader {
  key: string;
  devices: number;
  flaps?: { sliceSeconds: number; sliceNo: number[] };
}

export async function encodeFleet(inventoryKey: string, snap: FleetSnapshot): Promise<Uint8Array> {
  const header: FleetHeader = { key: inventoryKey, devices: snap.ids.size, ...(snap.flaps ? { flaps: { sliceSeconds: snap.flaps.sliceSeconds, sliceNo: [...snap.flaps.sliceNo] } } : {}) };
  const head = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  const parts = [len, head, Buffer.from(snap.status), Buffer.from(snap.changeSeen), littleEndian(snap.since), ...(snap.flaps ? [Buffer.from(snap.flaps.counts)] : [])];
  // Mostly repeated times and empty flapping slices: level 1 takes a fraction of the size for little CPU.
  return deflateRaw(Buffer.concat(parts), { level: 1 });
}

/** The history for an inventory of this key (its IDs); undefined when the publisher's inventory was another. */
export async function decodeFleet(bytes: Uint8Array, inventoryKey: string, ids: PackedIds): Promise<FleetSnapshot | undefined> {
  const buf = await inflateRaw(bytes);
  const headLen = buf.readUInt32BE(0);
  const header = JSON.parse(buf.toString('utf8', 4, 4 + headLen)) as FleetHeader;
  if (header.key !== inventoryKey || header.devices !== ids.size) return undefined;
  const n = header.devices;
  let at = 4 + headLen;
  const take = (bytes: number) => {
    const out = Uint8Array.prototype.slice.call(buf, at, at + bytes);
    at += bytes;
    return out;
  };
  const status = take(n);
  const changeSeen = take(n);
  const since = readLittleEndian(Buffer.from(take(4 * n)), n);
  const flaps = header.flaps ? { sliceSeconds: header.flaps.sliceSeconds, sliceNo: header.flaps.sliceNo, counts: take(header.flaps.sliceNo.length * n) } : undefined;
  return { ids, status, since, changeSeen, ...(flaps ? { flaps } : {}) };
}
