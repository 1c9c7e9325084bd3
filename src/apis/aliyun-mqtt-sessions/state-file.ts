// The state file of an MQTT job (`<state_dir>/<job name>.state`): its FleetState saved after every successful poll,
// so offline durations, last-change times and flapping counts survive a restart. Binary and checksummed: a header
// (JSON), the per-device arrays, then the client IDs (which keep the file usable across inventory edits) up to a
// CRC-32. A million devices are ~43 MB, 25 of them IDs, read and written without a million JSON objects. Written atomically (a temporary file, fsync, rename, fsync of the folder):
// a crash leaves the previous file or the new one, never half of one. A file that is not one of ours, damaged, of a
// newer format or another job's is reported and ignored: the job then starts from nothing, as without a file.
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { FLAP_SLICES, STATUS_NO_ANSWER, type FleetSnapshot } from './fleet-state';
import { PackedIds } from './inventory';

const MAGIC = Buffer.from('CSE-FLEET-STATE\n', 'latin1');
const FORMAT = 1;
/** Larger than any real state (a million devices ≈ 43 MB): a bigger file is not read, whatever it claims to be. */
export const MAX_STATE_FILE_BYTES = 1 << 30;

/** Whose state a file holds: a file of another job or instance is never applied. */
export interface StateOwner {
  jobName: string;
  instanceId: string;
}

interface Header {
  format: number;
  job_name: string;
  instance_id: string;
  /** Seconds since the epoch. */
  saved_at: number;
  devices: number;
  flap_slice_seconds?: number;
  flap_slices?: number[];
}

export type StateRead = { found: false } | { found: true; state: FleetSnapshot; savedAt: number } | { found: true; problem: string };

/**
 * Client IDs are encoded and written this many characters at a time, so a million of them never stall the event loop.
 * Cutting anywhere is safe: valid client IDs are ASCII (letters, digits, _ . : - and @), never half a surrogate pair.
 */
const IDS_PIECE_CHARS = 1 << 20;

/**
 * Writes the snapshot to `file` atomically; returns the bytes written. The arrays are written as they are (views, no
 * copies) and the IDs piece by piece, last: the file's length says how long they are.
 */
export async function writeStateFile(file: string, owner: StateOwner, snap: FleetSnapshot, savedAt: number): Promise<number> {
  const n = snap.ids.size;
  const header: Header = {
    format: FORMAT,
    job_name: owner.jobName,
    instance_id: owner.instanceId,
    saved_at: savedAt,
    devices: n,
    ...(snap.flaps ? { flap_slice_seconds: snap.flaps.sliceSeconds, flap_slices: [...snap.flaps.sliceNo] } : {}),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const headerLength = Buffer.alloc(4);
  headerLength.writeUInt32LE(headerBytes.length);
  const arrays = [MAGIC, headerLength, headerBytes, bytesOf(snap.status), bytesOf(snap.changeSeen), littleEndian(snap.since), ...(snap.flaps ? [bytesOf(snap.flaps.counts)] : [])];

  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  let bytes = 0;
  let crc = 0;
  const write = async (p: Buffer) => {
    crc = zlib.crc32(p, crc);
    for (let off = 0; off < p.length; ) {
      const { bytesWritten } = await fh.write(p, off, p.length - off, bytes);
      off += bytesWritten;
      bytes += bytesWritten;
    }
  };
  try {
    for (const p of arrays) await write(p);
    const text = snap.ids.text;
    for (let from = 0; from < text.length; from += IDS_PIECE_CHARS) await write(Buffer.from(text.slice(from, from + IDS_PIECE_CHARS), 'utf8'));
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(crc);
    await write(trailer);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  // The rename is only durable once the folder's entry is on disk too.
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
  return bytes;
}

/** Reads a state file; a missing file is `found: false`, any other problem a sentence saying what is wrong. */
export async function readStateFile(file: string, owner: StateOwner): Promise<StateRead> {
  let contents: Buffer | string;
  try {
    contents = sizeProblem(await fsp.stat(file)) ?? (await fsp.readFile(file));
  } catch (err) {
    return readError(err);
  }
  return interpret(contents, owner);
}

/** readStateFile for --config.check, which is synchronous. */
export function readStateFileSync(file: string, owner: StateOwner): StateRead {
  let contents: Buffer | string;
  try {
    contents = sizeProblem(fs.statSync(file)) ?? fs.readFileSync(file);
  } catch (err) {
    return readError(err);
  }
  return interpret(contents, owner);
}

function sizeProblem(stat: fs.Stats): string | undefined {
  if (!stat.isFile()) return 'it is not a regular file';
  if (stat.size > MAX_STATE_FILE_BYTES) return `it is ${stat.size} bytes, more than a state file can be (${MAX_STATE_FILE_BYTES})`;
  return undefined;
}

function readError(err: unknown): StateRead {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? { found: false } : { found: true, problem: `it cannot be read: ${code ?? (err as Error).message}` };
}

/** The file's contents, or the problem found before reading them. */
function interpret(contents: Buffer | string, owner: StateOwner): StateRead {
  if (typeof contents === 'string') return { found: true, problem: contents };
  try {
    return { found: true, ...parseState(contents, owner) };
  } catch (err) {
    return { found: true, problem: (err as Error).message };
  }
}

function parseState(buf: Buffer, owner: StateOwner): { state: FleetSnapshot; savedAt: number } {
  if (buf.length < MAGIC.length + 8 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('it is not a fleet state file of cloud-session-exporter');
  const body = buf.subarray(0, buf.length - 4);
  if (zlib.crc32(body) !== buf.readUInt32LE(buf.length - 4)) throw new Error('it is damaged (checksum mismatch: cut short or overwritten)');
  let at = MAGIC.length;
  const headerLength = buf.readUInt32LE(at);
  at += 4;
  if (at + headerLength > body.length) throw new Error('it is damaged (header longer than the file)');
  let h: Header;
  try {
    h = JSON.parse(buf.toString('utf8', at, at + headerLength)) as Header;
  } catch {
    throw new Error('it is damaged (its header is not JSON)');
  }
  at += headerLength;
  if (h.format !== FORMAT) throw new Error(`it has format ${String(h.format)}; this version reads format ${FORMAT}`);
  if (h.job_name !== owner.jobName || h.instance_id !== owner.instanceId) {
    throw new Error(`it belongs to job ${JSON.stringify(h.job_name)}, instance ${JSON.stringify(h.instance_id)}, not to job ${JSON.stringify(owner.jobName)}, instance ${JSON.stringify(owner.instanceId)}`);
  }
  const n = h.devices;
  const flapBytes = h.flap_slice_seconds === undefined ? 0 : FLAP_SLICES * n;
  if (!Number.isInteger(n) || n < 0 || at + 6 * n + flapBytes > body.length) throw new Error('it is damaged (sizes disagree with its header)');
  if (h.flap_slice_seconds !== undefined && (!(h.flap_slice_seconds > 0) || h.flap_slices?.length !== FLAP_SLICES)) throw new Error('it is damaged (bad flapping slices)');
  const status = new Uint8Array(buf.subarray(at, at + n));
  at += n;
  const changeSeen = new Uint8Array(buf.subarray(at, at + n));
  at += n;
  for (let i = 0; i < n; i++) if (status[i] > STATUS_NO_ANSWER || changeSeen[i] > 1) throw new Error(`it is damaged (device ${i} has status ${status[i]}, change flag ${changeSeen[i]})`);
  const since = readLittleEndian(buf.subarray(at, at + 4 * n), n);
  at += 4 * n;
  const flaps = h.flap_slice_seconds === undefined ? undefined : { sliceSeconds: h.flap_slice_seconds, sliceNo: h.flap_slices!, counts: new Uint8Array(buf.subarray(at, at + flapBytes)) };
  at += flapBytes;
  // The client IDs run to the checksum.
  const ids = new PackedIds(buf.toString('utf8', at, body.length));
  if (ids.size !== n) throw new Error(`it is damaged (${ids.size} client IDs for ${n} devices)`);
  return { state: { ids, status, since, changeSeen, ...(flaps ? { flaps } : {}) }, savedAt: h.saved_at };
}

/** The file is little-endian; on such a machine (nearly all) the array is written as it lies in memory. */
const NATIVE_LE = os.endianness() === 'LE';

function bytesOf(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** The array's bytes in little-endian order (the state file's and the handover's layout). */
export function littleEndian(a: Uint32Array): Buffer {
  if (NATIVE_LE) return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const out = Buffer.allocUnsafe(4 * a.length);
  for (let i = 0; i < a.length; i++) out.writeUInt32LE(a[i], 4 * i);
  return out;
}

export function readLittleEndian(b: Buffer, n: number): Uint32Array {
  const out = new Uint32Array(n);
  if (NATIVE_LE) new Uint8Array(out.buffer).set(b);
  else for (let i = 0; i < n; i++) out[i] = b.readUInt32LE(4 * i);
  return out;
}
