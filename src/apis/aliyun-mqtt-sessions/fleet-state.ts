// What an MQTT job remembers per device between polls — its last answered status, since when that status is known to
// hold, whether that moment was a change the exporter saw, and its status changes per slice of the flapping window —
// in typed arrays aligned with the packed client IDs: about 18 bytes a device and a handful of heap objects at a
// million devices. This is the one place the per-device state lives: the job counts and renders from it, the state
// file (state-file.ts) saves and restores it through snapshot()/restore(), and so could a leader publishing its results.
import { NO_VALUE } from '../../metrics/binary-gauge-lines';
import { PackedIds } from './inventory';

export const STATUS_OFFLINE = 0;
export const STATUS_ONLINE = 1;
/** No status in an answer (or never answered yet); the per-device lines leave such a device out. */
export const STATUS_NO_ANSWER = NO_VALUE;

/**
 * The flapping window is kept as this many slices per device, one byte each: a change counts in the slice of the time
 * it was seen, and the oldest slice drops out whole, so a count covers between 11/12 of the window and all of it.
 * Exact per-change times would cost 4 bytes per change, unbounded at high churn; this costs 12 bytes per device, fixed.
 */
export const FLAP_SLICES = 12;
/** A slice's count saturates here: a device changes at most once per poll, so only polls under ~1/255 of a slice apart reach it. */
const SLICE_MAX = 255;

/** The state as plain arrays (what the state file stores), aligned with `ids`. */
export interface FleetSnapshot {
  ids: PackedIds;
  status: Uint8Array;
  /** Seconds since the epoch; 0 = unknown. */
  since: Uint32Array;
  changeSeen: Uint8Array;
  flaps?: { sliceSeconds: number; sliceNo: readonly number[]; counts: Uint8Array };
}

export class FleetState {
  private ids = new PackedIds('');
  /** Last answered status of each device; STATUS_NO_ANSWER until the first answer. */
  private status: Uint8Array = new Uint8Array(0);
  /**
   * Since when the device's current status is known to hold, in seconds since the epoch (0 = no answer yet): the
   * answer that showed a change (changeSeen = 1), or else the first answer the exporter got for the device — a lower
   * bound, which is why an offline duration is never claimed beyond what was seen.
   */
  private since: Uint32Array = new Uint32Array(0);
  private changeSeen: Uint8Array = new Uint8Array(0);
  /** FLAP_SLICES arrays of this.ids.size counts, one after the other; undefined when flaps are not kept. */
  private flapCounts: Uint8Array | undefined;
  /** The slice number (time ÷ sliceSeconds) each slice holds; -1 = empty. */
  private readonly sliceNo: number[] = new Array<number>(FLAP_SLICES).fill(-1);
  private readonly sliceSeconds: number;

  /** `flapWindowSeconds` undefined: no flapping counts are kept (top_flapping_clients: 0). */
  constructor(flapWindowSeconds: number | undefined) {
    this.sliceSeconds = flapWindowSeconds === undefined ? 0 : flapWindowSeconds / FLAP_SLICES;
    if (flapWindowSeconds !== undefined) this.flapCounts = new Uint8Array(0);
  }

  /**
   * A state from a saved snapshot. Flapping counts kept with another window are dropped (their slices would mean other
   * times); `dropped` says so.
   */
  static restore(saved: FleetSnapshot, flapWindowSeconds: number | undefined): { state: FleetState; flapsDropped: boolean } {
    const state = new FleetState(flapWindowSeconds);
    state.ids = saved.ids;
    state.status = saved.status;
    state.since = saved.since;
    state.changeSeen = saved.changeSeen;
    const flaps = saved.flaps;
    const kept = flaps !== undefined && flapWindowSeconds !== undefined && flaps.sliceSeconds === state.sliceSeconds ? flaps : undefined;
    if (state.flapCounts !== undefined) {
      state.flapCounts = kept ? kept.counts : new Uint8Array(FLAP_SLICES * saved.ids.size);
      kept?.sliceNo.forEach((s, k) => (state.sliceNo[k] = s));
    }
    return { state, flapsDropped: flaps !== undefined && flapWindowSeconds !== undefined && kept === undefined };
  }

  /** The arrays as they are (not copies): write them out before the next poll changes them. */
  snapshot(): FleetSnapshot {
    const flaps = this.flapCounts && { sliceSeconds: this.sliceSeconds, sliceNo: [...this.sliceNo], counts: this.flapCounts };
    return { ids: this.ids, status: this.status, since: this.since, changeSeen: this.changeSeen, ...(flaps ? { flaps } : {}) };
  }

  get size(): number {
    return this.ids.size;
  }

  /** Re-aligns every array with a new list of client IDs: devices are matched by ID; new ones start unknown. */
  alignTo(ids: PackedIds): void {
    if (ids.key === this.ids.key) return;
    const n = ids.size;
    const before = new Map<string, number>();
    for (let i = 0; i < this.ids.size; i++) before.set(this.ids.id(i), i);
    const status = new Uint8Array(n).fill(STATUS_NO_ANSWER);
    const since = new Uint32Array(n);
    const changeSeen = new Uint8Array(n);
    const flapCounts = this.flapCounts && new Uint8Array(FLAP_SLICES * n);
    const oldN = this.ids.size;
    for (let i = 0; i < n; i++) {
      const j = before.get(ids.id(i));
      if (j === undefined) continue;
      status[i] = this.status[j];
      since[i] = this.since[j];
      changeSeen[i] = this.changeSeen[j];
      if (flapCounts) for (let k = 0; k < FLAP_SLICES; k++) flapCounts[k * n + i] = this.flapCounts![k * oldN + j];
    }
    this.ids = ids;
    this.status = status;
    this.since = since;
    this.changeSeen = changeSeen;
    this.flapCounts = flapCounts;
  }

  /**
   * Takes one successful poll's answers (aligned with the current IDs; STATUS_NO_ANSWER keeps what was known) and the
   * time of the answer for each device, in seconds. `onChange` hears each device whose answer differs from its last.
   */
  observe(answers: Uint8Array, answeredAt: (i: number) => number, onChange: (i: number, to: number) => void): void {
    const n = this.ids.size;
    if (answers.length !== n) throw new Error(`fleet state: ${answers.length} answers for ${n} devices`);
    for (let i = 0; i < n; i++) {
      const s = answers[i];
      if (s === STATUS_NO_ANSWER) continue;
      const was = this.status[i];
      if (was === s) continue;
      const t = answeredAt(i);
      this.status[i] = s;
      this.since[i] = t;
      if (was === STATUS_NO_ANSWER) {
        this.changeSeen[i] = 0;
        continue;
      }
      this.changeSeen[i] = 1;
      this.recordFlap(i, t);
      onChange(i, s);
    }
  }

  /**
   * Per group and threshold (index g * thresholds.length + k), the devices answered offline in `answers` whose
   * offline time is known to reach the threshold at `nowSeconds`. `thresholds` ascending, in seconds.
   */
  offlineLongerThan(answers: Uint8Array, groupOf: Uint32Array, groups: number, thresholds: readonly number[], nowSeconds: number): Uint32Array {
    const t = thresholds.length;
    const counts = new Uint32Array(groups * t);
    for (let i = 0; i < this.ids.size; i++) {
      if (answers[i] !== STATUS_OFFLINE || this.since[i] === 0) continue;
      const age = nowSeconds - this.since[i];
      const base = groupOf[i] * t;
      for (let k = 0; k < t && age >= thresholds[k]; k++) counts[base + k]++;
    }
    return counts;
  }

  /** When the device's current status was first answered after a seen change, in seconds; undefined if never seen changing. */
  lastChange(i: number): number | undefined {
    return this.changeSeen[i] === 1 ? this.since[i] : undefined;
  }

  /**
   * The `limit` devices with the most changes in the window ending at `nowSeconds` (at least one each), most first;
   * ties in inventory order. Linear in the devices, no string work: a histogram of counts finds the cut-off.
   */
  mostFlapping(limit: number, nowSeconds: number): Array<{ index: number; changes: number }> {
    const counts = this.flapCounts;
    if (counts === undefined || limit <= 0) return [];
    const n = this.ids.size;
    const current = Math.floor(nowSeconds / this.sliceSeconds);
    const live = [...this.sliceNo.keys()].filter((k) => this.sliceNo[k] > current - FLAP_SLICES && this.sliceNo[k] <= current);
    if (live.length === 0) return [];
    const totals = new Uint16Array(n);
    const histogram = new Uint32Array(FLAP_SLICES * SLICE_MAX + 1);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const k of live) sum += counts[k * n + i];
      totals[i] = sum;
      histogram[sum]++;
    }
    // The smallest count still in the top `limit`, and how many devices with exactly that count fit.
    let cut = histogram.length - 1;
    let above = 0;
    while (cut > 1 && above + histogram[cut] < limit) above += histogram[cut--];
    let atCut = Math.min(histogram[cut], limit - above);
    const out: Array<{ index: number; changes: number }> = [];
    for (let i = 0; i < n; i++) {
      const c = totals[i];
      if (c > cut) out.push({ index: i, changes: c });
      else if (c === cut && c > 0 && atCut > 0) {
        out.push({ index: i, changes: c });
        atCut--;
      }
    }
    return out.sort((a, b) => b.changes - a.changes || a.index - b.index);
  }

  private recordFlap(i: number, t: number): void {
    const counts = this.flapCounts;
    if (counts === undefined) return;
    const n = this.ids.size;
    const s = Math.floor(t / this.sliceSeconds);
    const k = s % FLAP_SLICES;
    // A slice holding a later time than this change (a clock step back) is not reset for it: the change is dropped.
    if (this.sliceNo[k] > s) return;
    if (this.sliceNo[k] !== s) {
      counts.fill(0, k * n, (k + 1) * n);
      this.sliceNo[k] = s;
    }
    if (counts[k * n + i] < SLICE_MAX) counts[k * n + i]++;
  }
}
