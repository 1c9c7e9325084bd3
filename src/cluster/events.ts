// One Redis subscription per replica for what the others announce: a lease released (take it at once) and a job's
// result published (adopt it now rather than at the next check). Messages are hints, never the only way: a lost
// message only delays a takeover to the next lease attempt and an adoption to the next result check.
import type Redis from 'ioredis';

export type ClusterEventKind = 'released' | 'published';

export class ClusterEvents {
  readonly channel: string;
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<ClusterEventKind, Set<(job: string, detail: string) => void>>();

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.channel = `${keyPrefix}:events`;
  }

  /** The message a script PUBLISHes on `channel` for this event. */
  static message(kind: ClusterEventKind, job: string, detail = ''): string {
    return `${kind}\t${job}\t${detail}`;
  }

  on(kind: ClusterEventKind, listener: (job: string, detail: string) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  start(): void {
    if (this.subscriber) return;
    // A subscribed connection can send nothing else: a second connection with the same options.
    const sub = this.redis.duplicate();
    this.subscriber = sub;
    sub.on('error', (err: Error) => this.onError(err));
    sub.on('message', (_channel: string, message: string) => {
      const [kind, job, detail = ''] = message.split('\t');
      for (const l of this.listeners.get(kind as ClusterEventKind) ?? []) l(job, detail);
    });
    // Subscribed again after every reconnect (a restarted Redis forgets subscriptions).
    sub.on('ready', () => void sub.subscribe(this.channel).catch((err: Error) => this.onError(err)));
  }

  /** Drops the subscription's connection and makes it again (with sentinels: to the primary they name now). */
  reconnect(): void {
    this.subscriber?.disconnect(true);
  }

  stop(): void {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
