// The form in which the replica that polls a job (the leader) hands each completed run to the others: one binary
// value in Redis, read by every other replica to serve the same metrics and to take over with the same state.
//
// A container of named entries, each length-prefixed: "meta" (JSON: when the run ended, per target whether it
// succeeded, the job's self-metric values, which entries follow), "families/<instance>" (a target's rendered families,
// copied as bytes), and "job/<section>" (the job type's own sections, core/job-type.ts JobHandover). Names carry
// their versions ("job/status.v1"), and a reader skips entries it does not know: a job type adds a section (e.g.
// last-change times) without breaking replicas that do not read it yet. The container's own version changes only if
// this framing does; a reader refuses another.
import { CHUNK_BYTES, type MetricFamily, type MetricType } from '../metrics/family';
import type { PublishedRun, Sections } from './coordination';

const MAGIC = Buffer.from('CSE', 'latin1');
const FORMAT_VERSION = 1;

interface Meta {
  job: string;
  type: string;
  replica: string;
  producedAt: number;
  durationMs: number;
  jobMetrics?: Record<string, number>;
  /** families: how the run's families of the target travel (none: a failed poll published nothing). */
  targets: Array<{ instanceId: string; ok: boolean; families: 'bytes' | 'sections' | 'none' }>;
}

interface FamilyHead {
  name: string;
  help: string;
  type: MetricType;
  samples: number;
  bytes: number;
}

/** A run as the leader publishes it; `copyFamilies` false when the job's sections carry the families. */
export function encodeRun(run: PublishedRun, about: { job: string; type: string; replica: string }, copyFamilies: boolean): Buffer {
  const entries: Array<[string, Buffer]> = [];
  const meta: Meta = {
    ...about,
    producedAt: run.producedAt,
    durationMs: run.durationMs,
    ...(run.jobMetrics ? { jobMetrics: { ...run.jobMetrics } } : {}),
    targets: run.targets.map((t) => ({ instanceId: t.instanceId, ok: t.ok, families: t.families === undefined ? 'none' : copyFamilies ? 'bytes' : 'sections' })),
  };
  entries.push(['meta', Buffer.from(JSON.stringify(meta), 'utf8')]);
  if (copyFamilies) for (const t of run.targets) if (t.families) entries.push([`families/${t.instanceId}`, encodeFamilies(t.families)]);
  for (const [name, bytes] of run.sections) entries.push([`job/${name}`, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
  return frame(entries);
}

/** The published run; throws on a value this version cannot read. */
export function decodeRun(value: Buffer): PublishedRun & { job: string; type: string; replica: string } {
  const entries = unframe(value);
  const metaBytes = entries.get('meta');
  if (!metaBytes) throw new Error('the published run has no meta entry');
  const meta = JSON.parse(metaBytes.toString('utf8')) as Meta;
  const sections = new Map<string, Uint8Array>();
  for (const [name, bytes] of entries) if (name.startsWith('job/')) sections.set(name.slice(4), bytes);
  return {
    job: meta.job,
    type: meta.type,
    replica: meta.replica,
    producedAt: meta.producedAt,
    durationMs: meta.durationMs,
    ...(meta.jobMetrics ? { jobMetrics: meta.jobMetrics } : {}),
    targets: meta.targets.map((t) => {
      const fam = t.families === 'bytes' ? entries.get(`families/${t.instanceId}`) : undefined;
      return { instanceId: t.instanceId, ok: t.ok, ...(fam ? { families: decodeFamilies(fam) } : {}), ...(t.families === 'sections' ? { inSections: true } : {}) };
    }),
    sections: sections as Sections,
  };
}

/** Families as bytes: a JSON list of heads, then every family's lines. */
function encodeFamilies(families: readonly MetricFamily[]): Buffer {
  const heads: FamilyHead[] = families.map((f) => ({ name: f.name, help: f.help, type: f.type, samples: f.samples, bytes: f.chunks.reduce((n, c) => n + c.length, 0) }));
  return frame([['heads', Buffer.from(JSON.stringify(heads), 'utf8')], ['lines', Buffer.concat(families.flatMap((f) => f.chunks))]]);
}

function decodeFamilies(bytes: Buffer): MetricFamily[] {
  const parts = unframe(bytes);
  const heads = JSON.parse(parts.get('heads')!.toString('utf8')) as FamilyHead[];
  const lines = parts.get('lines')!;
  let at = 0;
  return heads.map((h) => {
    const body = lines.subarray(at, at + h.bytes);
    at += h.bytes;
    return Object.freeze({ name: h.name, help: h.help, type: h.type, samples: h.samples, chunks: Object.freeze(chunksOf(body)) });
  });
}

/** Slices of about CHUNK_BYTES, cut after a newline: a scrape writes them one by one. */
function chunksOf(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  while (from < body.length) {
    let end = Math.min(body.length, from + CHUNK_BYTES);
    if (end < body.length) {
      const nl = body.indexOf(0x0a, end - 1);
      end = nl < 0 ? body.length : nl + 1;
    }
    out.push(body.subarray(from, end));
    from = end;
  }
  return out;
}

/** "CSE", the version, an entry count, then per entry: name length (u16), name, value length (u32), value. */
function frame(entries: Array<[string, Buffer]>): Buffer {
  const names = entries.map(([n]) => Buffer.from(n, 'utf8'));
  const size = MAGIC.length + 1 + 4 + entries.reduce((n, [, v], i) => n + 2 + names[i].length + 4 + v.length, 0);
  const out = Buffer.allocUnsafe(size);
  let at = MAGIC.copy(out, 0);
  at = out.writeUInt8(FORMAT_VERSION, at);
  at = out.writeUInt32BE(entries.length, at);
  entries.forEach(([, value], i) => {
    at = out.writeUInt16BE(names[i].length, at);
    at += names[i].copy(out, at);
    at = out.writeUInt32BE(value.length, at);
    at += value.copy(out, at);
  });
  return out;
}

function unframe(buf: Buffer): Map<string, Buffer> {
  if (buf.length < MAGIC.length + 5 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a published run');
  const version = buf.readUInt8(MAGIC.length);
  if (version !== FORMAT_VERSION) throw new Error(`published run format ${version}; this version reads ${FORMAT_VERSION}`);
  const count = buf.readUInt32BE(MAGIC.length + 1);
  const out = new Map<string, Buffer>();
  let at = MAGIC.length + 5;
  for (let i = 0; i < count; i++) {
    const nameLen = buf.readUInt16BE(at);
    const name = buf.toString('utf8', at + 2, at + 2 + nameLen);
    at += 2 + nameLen;
    const len = buf.readUInt32BE(at);
    at += 4;
    if (at + len > buf.length) throw new Error('published run truncated');
    out.set(name, buf.subarray(at, at + len));
    at += len;
  }
  return out;
}
