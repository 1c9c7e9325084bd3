// Holds the latest good metric families of every (job, cloud instance), expires them when stale,
// and merges same-named families of different jobs under one HELP/TYPE header.
import type { MetricFamily } from './family';

interface Part {
  families: readonly MetricFamily[];
  producedAt: number;
}

export class SnapshotStore {
  private readonly jobs = new Map<string, Map<string, Part>>();
  private readonly staleAfterMs = new Map<string, number>();
  /** Per job, the instances whose data were dropped as stale and not yet replaced by a fresh poll. */
  private readonly dropped = new Map<string, Set<string>>();

  setStaleAfter(jobName: string, ms: number): void {
    this.staleAfterMs.set(jobName, ms);
  }

  put(jobName: string, instanceId: string, families: readonly MetricFamily[], producedAt: number): void {
    let parts = this.jobs.get(jobName);
    if (!parts) this.jobs.set(jobName, (parts = new Map()));
    parts.set(instanceId, { families, producedAt });
    this.dropped.get(jobName)?.delete(instanceId);
  }

  /** Drops instances no longer configured. */
  retainInstances(jobName: string, instanceIds: ReadonlySet<string>): void {
    const parts = this.jobs.get(jobName);
    for (const id of parts?.keys() ?? []) if (!instanceIds.has(id)) parts!.delete(id);
    for (const id of this.dropped.get(jobName) ?? []) if (!instanceIds.has(id)) this.dropped.get(jobName)!.delete(id);
  }

  removeJob(jobName: string): void {
    this.jobs.delete(jobName);
    this.staleAfterMs.delete(jobName);
    this.dropped.delete(jobName);
  }

  /** Deletes parts older than their job's stale_after; returns what this call dropped, as [job, instance] pairs. */
  expire(now: number): Array<[string, string]> {
    const droppedNow: Array<[string, string]> = [];
    for (const [jobName, parts] of this.jobs) {
      const limit = this.staleAfterMs.get(jobName) ?? Infinity;
      for (const [id, part] of parts) {
        if (now - part.producedAt > limit) {
          parts.delete(id);
          let set = this.dropped.get(jobName);
          if (!set) this.dropped.set(jobName, (set = new Set()));
          set.add(id);
          droppedNow.push([jobName, id]);
        }
      }
    }
    return droppedNow;
  }

  /** Whether this instance's data are missing because they went stale (until a fresh poll replaces them). */
  isStale(jobName: string, instanceId: string): boolean {
    return this.dropped.get(jobName)?.has(instanceId) ?? false;
  }

  /** Families grouped by name, in first-seen order; each group is rendered under one header. */
  grouped(): Array<{ name: string; help: string; type: MetricFamily['type']; members: MetricFamily[] }> {
    const byName = new Map<string, { name: string; help: string; type: MetricFamily['type']; members: MetricFamily[] }>();
    for (const parts of this.jobs.values()) {
      for (const part of parts.values()) {
        for (const fam of part.families) {
          let group = byName.get(fam.name);
          if (!group) byName.set(fam.name, (group = { name: fam.name, help: fam.help, type: fam.type, members: [] }));
          group.members.push(fam);
        }
      }
    }
    return [...byName.values()];
  }
}
