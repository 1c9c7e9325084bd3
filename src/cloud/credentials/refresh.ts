// Keeps one cloud credential fresh in the background so that calls only ever read a cached value.
//
// Policy (shared by every refreshing credential type of both clouds):
// - A credential with an expiry is refreshed well before it: at expiry − min(lifetime / 3, 15 min), the Alibaba
//   SDK's own stale window, so a 1 h STS token is renewed with 15 min to spare and a 6 s test token with 2 s.
// - A failed refresh keeps the held credential until it expires and is retried every clamp(remaining / 10,
//   minRetry, 60 s); once nothing valid is held, with a doubling back-off up to 60 s.
// - Calls never wait for a scheduled refresh. Only a call made before the first credential ever arrived waits for
//   that first fetch (bounded by its HTTP timeout), and a call made after expiry waits for a refresh already running.
// - The state (ok / failing / expired) is logged once per change, never per attempt; every attempt is counted.
import type { Logger } from 'pino';
import { redact } from '../../util/redact';
import type { ProxyEndpoint } from '../proxy';

const FIFTEEN_MIN = 15 * 60_000;
const MAX_RETRY_MS = 60_000;

/** How long before expiry a credential of this lifetime is renewed: a third of its life, at most 15 minutes. */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(Math.max(lifetimeMs, 0) / 3, FIFTEEN_MIN);
}

export interface Obtained<C> {
  value: C;
  /** ms epoch; undefined when the source does not say (static keys, files, environment). */
  expiresAt?: number;
  /** Identity of the credential (its key ID): an answer with the same identity is no new credential. */
  id: string;
  /** Where it came from, for logs (e.g. "default/ecs_ram_role"). */
  source?: string;
}

export type RefreshResult = 'success' | 'failure';

export interface RefreshEvent {
  account?: string;
  type: string;
  result: RefreshResult;
  /** Expiry of the credential held after this attempt (ms epoch), undefined if static or none. */
  expiry?: number;
  /** Redacted reason of a failure. */
  error?: string;
}

export type CredentialState = 'starting' | 'ok' | 'failing' | 'expired';

/** Raised to a caller when no usable credential is held; `code` is label-safe for metrics. */
class CredentialsUnavailableError extends Error {
  readonly code = 'CredentialsUnavailable';

  constructor(message: string) {
    super(redact(message));
    this.name = 'CredentialsUnavailableError';
  }
}

interface RefresherOptions {
  logger: Logger;
  account?: string;
  type: string;
  now?: () => number;
  onRefresh?: (event: RefreshEvent) => void;
  /** Shortest wait between two attempts after a failure (default 1 s). */
  minRetryMs?: number;
  /**
   * When the credential has no expiry: how often to ask the source again (files, chains). Undefined: never (static).
   * An answer with the same identity is then not counted as a refresh.
   */
  recheckMs?: number;
}

interface Held<C> {
  value: C;
  expiresAt?: number;
  id: string;
  /** ms before expiry at which the background refresh runs, fixed when this credential first arrived. */
  marginMs: number;
}

class Refresher<C> {
  private held: Held<C> | undefined;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failuresInRow = 0;
  /** Redacted (describeError); empty after a success. */
  lastError = '';
  private lastSuccessAt = -Infinity;
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private readonly first: Promise<void>;
  state: CredentialState = 'starting';
  /** Bumped whenever a different credential (or a new expiry) is held. */
  generation = 0;
  readonly counts: Record<RefreshResult, number> = { success: 0, failure: 0 };

  constructor(
    private readonly fetch: (signal: AbortSignal) => Promise<Obtained<C>>,
    private readonly opts: RefresherOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.first = this.refresh();
    // The first fetch's failure is reported through get() and the log; nobody else awaits it.
    this.first.catch(() => undefined);
  }

  get expiry(): number | undefined {
    return this.held?.expiresAt;
  }

  /** Resolves once the first attempt has finished, whatever its outcome. */
  settled(): Promise<void> {
    return this.first.catch(() => undefined);
  }

  /** The hot path: the held credential, or an error saying why there is none. */
  async get(): Promise<C> {
    if (this.usable()) return this.held!.value;
    if (this.running) {
      await this.running.catch(() => undefined);
      if (this.usable()) return this.held!.value;
    }
    if (this.closed) throw new CredentialsUnavailableError(`${this.label()} credentials are closed`);
    const why = this.lastError ? `: ${this.lastError}` : '';
    if (this.held?.expiresAt !== undefined) {
      throw new CredentialsUnavailableError(`${this.label()} credential expired at ${new Date(this.held.expiresAt).toISOString()} and could not be refreshed${why}`);
    }
    throw new CredentialsUnavailableError(`${this.label()} credentials could not be obtained${why}`);
  }

  /**
   * Refreshes now and resolves when done: the cloud refused the held credential as expired. `usedGeneration` is the
   * `generation` read before the refused call: when a newer credential has arrived since, nothing is fetched. Calls
   * refused together share one fetch (a refresh running is joined), and without `usedGeneration` a refresh that
   * succeeded within the last second counts as that fetch.
   */
  async refreshNow(usedGeneration?: number): Promise<void> {
    if (this.closed) return;
    if (usedGeneration !== undefined && usedGeneration !== this.generation) return;
    if (this.running) return this.running.catch(() => undefined);
    if (usedGeneration === undefined && this.now() - this.lastSuccessAt < 1000) return;
    await this.refresh().catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort.abort(new Error('credentials closed'));
  }

  private usable(): boolean {
    const h = this.held;
    if (!h) return false;
    if (h.expiresAt === undefined) return true;
    // A call signed now must still be valid when it reaches the cloud: stop handing out the last moments.
    return this.now() < h.expiresAt - Math.min(30_000, h.marginMs / 10);
  }

  private label(): string {
    return this.opts.account ? `account ${this.opts.account}:` : `${this.opts.type}:`;
  }

  private refresh(): Promise<void> {
    clearTimeout(this.timer);
    const run = this.attempt().finally(() => {
      if (this.running === run) this.running = undefined;
      this.schedule();
    });
    this.running = run;
    return run;
  }

  private async attempt(): Promise<void> {
    let got: Obtained<C>;
    try {
      got = await this.fetch(this.abort.signal);
    } catch (err) {
      if (this.closed) return;
      this.failed(err);
      throw err;
    }
    if (this.closed) return;
    const now = this.now();
    const same = this.held?.id === got.id && this.held.expiresAt === got.expiresAt;
    this.lastSuccessAt = now;
    this.lastError = '';
    if (same && this.opts.recheckMs !== undefined && got.expiresAt === undefined) {
      // A re-read that found nothing new (files, environment): not a refresh.
      this.recovered();
      return;
    }
    const lifetime = got.expiresAt === undefined ? 0 : got.expiresAt - now;
    const marginMs = same && this.held ? this.held.marginMs : refreshMarginMs(lifetime);
    this.held = { value: got.value, expiresAt: got.expiresAt, id: got.id, marginMs };
    if (!same) this.generation++;
    this.counts.success++;
    this.opts.onRefresh?.({ account: this.opts.account, type: this.opts.type, result: 'success', expiry: got.expiresAt });
    const log = { account: this.opts.account, credentials: this.opts.type, source: got.source, expiry: got.expiresAt === undefined ? undefined : new Date(got.expiresAt).toISOString() };
    if (this.state === 'starting') this.opts.logger.info(log, 'credentials obtained');
    else if (this.state !== 'ok') this.opts.logger.info({ ...log, failed_attempts: this.failuresInRow }, 'credential refresh recovered');
    else this.opts.logger.debug(log, 'credentials refreshed');
    this.recovered();
  }

  private recovered(): void {
    this.state = 'ok';
    this.failuresInRow = 0;
  }

  private failed(err: unknown): void {
    this.failuresInRow++;
    this.lastError = describeError(err);
    this.counts.failure++;
    this.opts.onRefresh?.({ account: this.opts.account, type: this.opts.type, result: 'failure', expiry: this.held?.expiresAt, error: this.lastError });
    const next: CredentialState = this.usable() ? 'failing' : 'expired';
    if (next === this.state) return;
    const log = { account: this.opts.account, credentials: this.opts.type, error: this.lastError };
    if (next === 'failing') {
      this.opts.logger.warn({ ...log, expiry: new Date(this.held!.expiresAt ?? 0).toISOString() }, 'credential refresh failed; the current credential is kept until it expires');
    } else {
      this.opts.logger.error(log, this.held ? 'credential expired and could not be refreshed: calls fail until a refresh succeeds' : 'credentials could not be obtained: calls fail until they are');
    }
    this.state = next;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const delay = this.nextDelay();
    if (delay === undefined) return;
    this.timer = setTimeout(() => void this.refresh().catch(() => undefined), delay);
    // Background work only: never keep a process alive for it.
    this.timer.unref();
  }

  private nextDelay(): number | undefined {
    const minRetry = this.opts.minRetryMs ?? 1000;
    const now = this.now();
    const h = this.held;
    if (this.failuresInRow > 0) {
      if (h?.expiresAt !== undefined && this.usable()) return clamp((h.expiresAt - now) / 10, minRetry, MAX_RETRY_MS);
      if (h && h.expiresAt === undefined) return this.opts.recheckMs ?? minRetry;
      return Math.min(minRetry * 2 ** Math.min(this.failuresInRow - 1, 16), MAX_RETRY_MS);
    }
    if (!h) return minRetry;
    if (h.expiresAt === undefined) return this.opts.recheckMs;
    const due = h.expiresAt - h.marginMs - now;
    // The source answered with the credential already inside its refresh window (an instance role not yet rotated):
    // ask again soon, but never in a tight loop.
    return due > 0 ? due : clamp((h.expiresAt - now) / 10, minRetry, MAX_RETRY_MS);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

// Keys whose values are credentials, in the JSON bodies that some SDK error messages quote whole.
const SECRET_JSON = /("(?:AccessKeyId|AccessKeySecret|SecurityToken|TmpSecretId|TmpSecretKey|Token|OIDCToken|WebIdentityToken)"\s*:\s*)"[^"]*"/gi;

/** A failure's reason, short and safe to log or export: SDK messages may quote whole answers. */
export function describeError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const masked = redact(msg.replace(SECRET_JSON, '$1"REDACTED"'));
  return masked.length > 300 ? `${masked.slice(0, 300)}…` : masked;
}

/** Options every credential type of both clouds takes. */
export interface CredentialsOptions {
  logger: Logger;
  /** Account name, for logs and refresh events. */
  account?: string;
  /** Base of relative `*_file` paths (the config file's directory). */
  configDir?: string;
  now?: () => number;
  onRefresh?: (event: RefreshEvent) => void;
  /** Bound of each STS, metadata or URI exchange (default: the vendor SDK's own connect + read timeouts). */
  httpTimeoutMs?: number;
  /**
   * The proxy an STS call to this URL goes through, if any: the account's route (proxy.ts), as for its API calls.
   * Never asked for instance metadata or a credentials URI, which are reached directly.
   */
  stsProxy?: (url: string) => ProxyEndpoint | undefined;
  /** Shortest wait between attempts after a failure (default 1 s). */
  minRetryMs?: number;
  /** How often `*_file` credentials (type sts) and the default chains are looked at again (default 10 s / 60 s). */
  recheckMs?: number;
  /** Quiet time a changed set of files must keep before it is read (default 1 s). */
  settleMs?: number;
}

/** Types whose credential is fixed once read (keys given inline, or read once from files). */
const FIXED_TYPES = new Set(['access_key', 'secret', 'sts']);

/** The part of a provider the transports and metrics see, whatever the cloud. */
export abstract class ManagedCredentials<C> {
  protected readonly refresher: Refresher<C>;
  /**
   * Whether asking again can bring a different credential: roles, instance roles, URIs, chains, and `sts` keys
   * re-read from files. Fixed keys cannot, so a call they sign that the cloud refuses is not sent again.
   */
  readonly refreshable: boolean;

  constructor(
    readonly type: string,
    fetch: (signal: AbortSignal) => Promise<Obtained<C>>,
    opts: CredentialsOptions,
    recheckMs?: number,
    private readonly cleanup?: () => void,
  ) {
    this.refreshable = recheckMs !== undefined || !FIXED_TYPES.has(type);
    this.refresher = new Refresher(fetch, { logger: opts.logger, account: opts.account, type, now: opts.now, onRefresh: opts.onRefresh, minRetryMs: opts.minRetryMs, recheckMs });
  }

  /** Expiry of the held credential (ms epoch); undefined for static keys and until the first one arrives. */
  get expiry(): number | undefined {
    return this.refresher.expiry;
  }

  get state(): CredentialState {
    return this.refresher.state;
  }

  /** Refresh attempts so far, by result. */
  get refreshes(): Readonly<Record<RefreshResult, number>> {
    return this.refresher.counts;
  }

  /** Why the last attempt failed, redacted and short; empty when it succeeded. */
  get lastError(): string {
    return this.refresher.lastError;
  }

  /** Resolves when the first attempt has finished (successfully or not): startup can log the state once. */
  ready(): Promise<void> {
    return this.refresher.settled();
  }

  /** Changes whenever a new credential is held: read it before a call to pass to refreshNow() if the call is refused. */
  get generation(): number {
    return this.refresher.generation;
  }

  /** The cloud refused the credential as expired: refresh now; resolves when done (coalesced, see Refresher.refreshNow). */
  refreshNow(usedGeneration?: number): Promise<void> {
    return this.refresher.refreshNow(usedGeneration);
  }

  /** Like refreshNow() without waiting for it. */
  invalidate(): void {
    void this.refresher.refreshNow();
  }

  /** Stops the timers and any exchange in flight. */
  close(): void {
    this.refresher.close();
    this.cleanup?.();
  }

  protected current(): Promise<C> {
    return this.refresher.get();
  }
}
