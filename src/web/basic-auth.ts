// HTTP basic authentication against the web config's bcrypt hashes: constant-shape checks for unknown users, a bounded
// result cache, bcrypt on a worker thread one computation at a time, and never two for the same credentials at once.
import crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Secret } from './secret';

const BCRYPT_HASH = /^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const DEFAULT_COST = 10;

/** Why `hash` is not a bcrypt hash the toolkit (Go's x/crypto/bcrypt) would accept, or undefined if it is one. Never echoes the hash. */
export function bcryptHashProblem(hash: string): string | undefined {
  if (!hash.startsWith('$')) return 'is not a bcrypt hash (it must start with "$2y$", "$2b$" or "$2a$"; see docs/web-security.md for how to make one)';
  const m = BCRYPT_HASH.exec(hash);
  if (!m) return 'is not a well-formed bcrypt hash (expected $2y$NN$ followed by 53 characters)';
  const cost = Number(m[1]);
  if (cost < 4 || cost > 31) return `has bcrypt cost ${cost}, outside the allowed range 4-31`;
  return undefined;
}

interface Credentials {
  user: string;
  password: string;
}

/** The user and password of an `Authorization: Basic` header, as Go's Request.BasicAuth reads it. */
export function parseBasicAuthorization(header: string | undefined): Credentials | undefined {
  if (!header || header.length < 6 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const encoded = header.slice(6);
  // Strict standard base64 with padding, as Go decodes it; Buffer.from alone would accept junk.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

interface BasicAuthOptions {
  /** Results kept (least recently used dropped first). */
  cacheSize?: number;
}

export class BasicAuth {
  private users: ReadonlyMap<string, Secret> = new Map();
  private readonly cacheSize: number;
  private readonly cache = new Map<string, boolean>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  // Cache keys are an HMAC under a key that lives only in this process, so no password (nor a plain hash of one) is kept.
  private readonly cacheKeyKey = crypto.randomBytes(32);
  private readonly dummyHashes = new Map<number, Promise<string>>();
  private dummyCost = DEFAULT_COST;
  private readonly bcrypt = new BcryptWorker();
  private computed = 0;

  constructor(opts: BasicAuthOptions = {}) {
    this.cacheSize = opts.cacheSize ?? 100;
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** bcrypt comparisons run so far (cache hits and shared in-flight checks not counted). */
  get computations(): number {
    return this.computed;
  }

  /** Installs a new user list; every cached result is dropped, whatever changed. */
  setUsers(users: ReadonlyMap<string, Secret>): void {
    this.users = users;
    this.cache.clear();
    this.dummyCost = typicalCost(users);
    // Made now rather than on the first unknown user, whose check would otherwise take twice as long as a known one's.
    if (users.size) void this.dummyHash(this.dummyCost);
  }

  /** True when the header carries the right password of a configured user. */
  async check(authorization: string | undefined): Promise<boolean> {
    const creds = parseBasicAuthorization(authorization);
    if (!creds) return false;
    const stored = this.users.get(creds.user);
    // An unknown user costs one bcrypt comparison too, so response times do not tell which names exist.
    const hash = stored ? stored.reveal() : await this.dummyHash(this.dummyCost);
    const key = crypto.createHmac('sha256', this.cacheKeyKey).update(creds.user).update('\0').update(hash).update('\0').update(creds.password).digest('base64');

    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached && stored !== undefined;
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      const users = this.users;
      this.computed++;
      pending = this.bcrypt.compare(creds.password, hash).then((match) => {
        const ok = match && stored !== undefined;
        // A comparison that straddled setUsers belongs to the old list: its answer must not outlive it in the cache.
        if (this.users === users) this.remember(key, ok);
        return ok;
      });
      pending.finally(() => this.inFlight.delete(key)).catch(() => undefined);
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private remember(key: string, ok: boolean): void {
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, ok);
  }

  /** Stops the worker thread (it never keeps the process alive, but tests and shutdowns should not leave it behind). */
  close(): Promise<void> {
    return this.bcrypt.close();
  }

  private dummyHash(cost: number): Promise<string> {
    let hash = this.dummyHashes.get(cost);
    if (!hash) {
      hash = this.bcrypt.hash(crypto.randomBytes(18).toString('base64'), cost);
      this.dummyHashes.set(cost, hash);
      // A failed attempt is not kept: the next unknown user tries again.
      hash.catch(() => this.dummyHashes.delete(cost));
    }
    return hash;
  }
}

/** The cost most configured hashes use (the higher on a tie): the unknown-user check should take as long as theirs. */
function typicalCost(users: ReadonlyMap<string, Secret>): number {
  const counts = new Map<number, number>();
  for (const hash of users.values()) {
    const m = BCRYPT_HASH.exec(hash.reveal());
    if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  }
  let best = DEFAULT_COST;
  let bestCount = 0;
  for (const [cost, n] of counts) {
    if (n > bestCount || (n === bestCount && cost > best)) {
      best = cost;
      bestCount = n;
    }
  }
  return best;
}

// bcryptjs in the event loop runs up to 100 ms between yields (a whole cost-10 comparison at once), stalling every
// other request, scrapes included. On one worker thread the loop stays free, and the worker's message queue runs one
// computation at a time, as the toolkit's mutex does, so a burst of logins cannot take more than one core.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptjs);
parentPort.on('message', ({ id, op, password, arg }) => {
  try {
    const result = op === 'compare' ? bcrypt.compareSync(password, arg) : bcrypt.hashSync(password, arg);
    parentPort.postMessage({ id, result });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

class BcryptWorker {
  private worker?: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  compare(password: string, hash: string): Promise<boolean> {
    return this.run('compare', password, hash) as Promise<boolean>;
  }

  hash(password: string, cost: number): Promise<string> {
    return this.run('hash', password, cost) as Promise<string>;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private run(op: 'compare' | 'hash', password: string, arg: string | number): Promise<unknown> {
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Held open only while work is queued: an idle worker never keeps the process alive.
      worker.ref();
      worker.postMessage({ id, op, password, arg });
    });
  }

  private start(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs: require.resolve('bcryptjs') } });
    worker.unref();
    worker.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!this.pending.size) worker.unref();
      if (m.error !== undefined) p?.reject(new Error(`bcrypt: ${m.error}`));
      else p?.resolve(m.result);
    });
    const failAll = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`bcrypt worker exited with code ${code}`)));
    return worker;
  }
}
