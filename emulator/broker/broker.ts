// The emulator's embedded MQTT broker (aedes): one isolated broker per ApsaraMQ instance behind one TCP port, ApsaraMQ
// Signature and Token sign-in against the scenario's credentials and the tokens ApplyToken issued, delivery of
// messages published through the cloud API (QoS 1) with drop and delay faults, and the real connection state that
// `status_from_broker` instances report. Token mode follows the product's client documentation: the broker pushes
// `$SYS/tokenExpireNotice` about 5 minutes before a token expires, accepts a replacement published on
// `$SYS/uploadToken` ({"token", "type"}, acknowledged by PUBACK), and closes a connection whose token expired or was
// revoked after pushing `$SYS/tokenInvalidNotice` ({"code", "type"}).
import net from 'node:net';
import Aedes, { type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { isValidClientId, parseUsername, passwordMatches } from './auth';
import { peekConnect } from './connect';
import { connectDevices, type DeviceClients } from './devices';
import { BrokerFaultsPatchSchema, type BrokerDevices, type BrokerFaults } from './scenario';
import { INVALID_TOKEN, parseTokenPassword, resourceCovers, type IssuedToken, type TokenStore, type TokenType } from './tokens';
import { ScenarioError, describeZodIssues } from '../core/scenario';

export interface BrokerCredential {
  account: string;
  access_key_id: string;
  access_key_secret: string;
}

export interface BrokerInstance {
  instance_id: string;
  /** Only this account's keys may sign in, as for the session APIs. */
  account?: string;
}

export interface MqttBrokerOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  credentials: readonly BrokerCredential[];
  instances: readonly BrokerInstance[];
  /** Tokens issued by ApplyToken, for Token-mode sign-in (none: Token mode is refused). */
  tokens?: TokenStore;
  faults?: BrokerFaults;
  /** Real device connections opened once the broker listens. */
  devices?: readonly BrokerDevices[];
  random?: () => number;
  now?: () => number;
}

export interface BrokerStats {
  /** Messages published through the cloud API and handed to the broker. */
  published: number;
  dropped: number;
  delayed: number;
  /** Sign-ins refused (bad username or password, unknown instance, bad client ID, invalid token). */
  refused: number;
  /** Sign-ins accepted, by mode. */
  sign_ins: { signature: number; token: number };
  /** Tokens replaced over a connection ($SYS/uploadToken) and accepted. */
  token_updates: number;
  /** Connections closed for a token: expired, revoked, or an update that was not valid. */
  token_disconnects: number;
  connections: number;
}

// Return codes of MQTT 3.1.1 CONNACK; aedes maps them to the v5 reason codes itself.
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_CONNECT_BYTES = 64 * 1024;
const UPLOAD_TOKEN_TOPIC = '$SYS/uploadToken';
const EXPIRE_NOTICE_TOPIC = '$SYS/tokenExpireNotice';
const INVALID_NOTICE_TOPIC = '$SYS/tokenInvalidNotice';
/** "Generally 5 minutes before expiry, once" (the product's documentation); at once for a token with less left. */
const EXPIRE_NOTICE_LEAD_MS = 5 * 60_000;

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** A Token-mode connection: whose tokens it holds, and the timers of their notices and expiry. */
interface TokenSession {
  accessKeyId: string;
  instanceId: string;
  tokens: Map<TokenType, IssuedToken>;
  timers: NodeJS.Timeout[];
  /** Tokens whose expiry notice was pushed: once each. */
  noticed: Set<string>;
}

export class MqttBroker {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private brokers = new Map<string, Aedes>();
  /** Takes connections for unknown instances or malformed usernames, and refuses them. */
  private rejecter: Aedes | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private currentFaults: BrokerFaults;
  private readonly counters: Omit<BrokerStats, 'connections'> = { published: 0, dropped: 0, delayed: 0, refused: 0, sign_ins: { signature: 0, token: 0 }, token_updates: 0, token_disconnects: 0 };
  /** Token-mode connections, from their accepted sign-in until they close. */
  private readonly sessions = new Map<Client, TokenSession>();
  private deviceClients: DeviceClients[] = [];
  private boundPort = 0;
  private closed = false;
  private readonly random: () => number;
  private readonly now: () => number;

  private constructor(private readonly opts: MqttBrokerOptions) {
    this.currentFaults = opts.faults ?? { drop_rate: 0, delay_ms: { min: 0, max: 0 } };
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  static async start(opts: MqttBrokerOptions): Promise<MqttBroker> {
    const broker = new MqttBroker(opts);
    await broker.listen(opts.port ?? 0);
    try {
      for (const d of opts.devices ?? []) broker.deviceClients.push(await broker.connectScenarioDevices(d));
    } catch (err) {
      await broker.close();
      throw err;
    }
    return broker;
  }

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  get port(): number {
    return this.boundPort;
  }

  /** e.g. mqtt://127.0.0.1:41883 */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `mqtt://${host}:${this.boundPort}`;
  }

  faults(): BrokerFaults {
    return { drop_rate: this.currentFaults.drop_rate, delay_ms: { ...this.currentFaults.delay_ms } };
  }

  /** Changes the given fault keys (`drop_rate`, `delay_ms`), keeping the others; validated like the scenario. */
  setFaults(patch: unknown): BrokerFaults {
    const parsed = BrokerFaultsPatchSchema.safeParse(patch ?? {});
    if (!parsed.success) throw new ScenarioError('broker faults', describeZodIssues(parsed.error));
    this.currentFaults = { ...this.currentFaults, ...Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)) };
    return this.faults();
  }

  stats(): BrokerStats {
    let connections = 0;
    for (const b of this.brokers.values()) connections += b.connectedClients;
    return { ...this.counters, sign_ins: { ...this.counters.sign_ins }, connections };
  }

  /** Delivers a message published through the cloud API to the instance's subscribers at QoS 1, subject to the faults. */
  async publish(m: { instanceId: string; topic: string; payload: string }): Promise<void> {
    const broker = this.brokers.get(m.instanceId);
    if (broker === undefined) throw new Error(`no broker for instance ${m.instanceId}`);
    this.counters.published++;
    const { drop_rate, delay_ms } = this.currentFaults;
    if (drop_rate > 0 && this.random() < drop_rate) {
      this.counters.dropped++;
      return;
    }
    const deliver = () =>
      new Promise<void>((resolve) => {
        broker.publish({ cmd: 'publish', topic: m.topic, payload: Buffer.from(m.payload, 'utf8'), qos: 1, retain: false, dup: false }, () => resolve());
      });
    const delay = delay_ms.max > 0 ? delay_ms.min + Math.floor(this.random() * (delay_ms.max - delay_ms.min + 1)) : 0;
    if (delay <= 0) return deliver();
    this.counters.delayed++;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) void deliver();
    }, delay);
    this.timers.add(timer);
  }

  /** A client counts as connected from its registration (just before CONNACK) until its connection closes. */
  isConnected(instanceId: string, clientId: string): boolean {
    return this.clientsOf(instanceId)[clientId] !== undefined;
  }

  /** Client IDs connected to one instance. */
  connectedClients(instanceId: string): string[] {
    return Object.keys(this.clientsOf(instanceId)).sort();
  }

  /** Kills a client's connection from the server side, without a DISCONNECT (a network failure). */
  disconnectClient(instanceId: string, clientId: string): boolean {
    const client = this.clientsOf(instanceId)[clientId];
    if (client === undefined) return false;
    (client.conn as net.Socket).destroy();
    return true;
  }

  /**
   * Revokes every token of an instance (as RevokeToken would, one by one): connections holding one are told
   * (`$SYS/tokenInvalidNotice`, code 3) and closed; a later sign-in with one is refused. Returns how many were revoked.
   */
  revokeTokens(instanceId: string): number {
    const n = this.opts.tokens?.revokeInstance(instanceId) ?? 0;
    for (const client of Object.values(this.clientsOf(instanceId))) {
      const session = this.sessions.get(client);
      const revoked = session && [...session.tokens.values()].find((t) => t.revoked);
      if (revoked) this.dropForToken(client, INVALID_TOKEN.revoked, revoked.type);
    }
    return n;
  }

  /** Drops every connection and listens again on the same port, with empty sessions (a broker restart). */
  async restart(): Promise<void> {
    await this.shutdownListener();
    await this.listen(this.boundPort);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const session of this.sessions.values()) for (const t of session.timers) clearTimeout(t);
    this.sessions.clear();
    await Promise.all(this.deviceClients.map((d) => d.close()));
    this.deviceClients = [];
    await this.shutdownListener();
  }

  private clientsOf(instanceId: string): Record<string, Client> {
    // aedes keeps registered clients in `clients` (not in its typings).
    return (this.brokers.get(instanceId) as (Aedes & { clients?: Record<string, Client> }) | undefined)?.clients ?? {};
  }

  private async listen(port: number): Promise<void> {
    for (const inst of this.opts.instances) this.brokers.set(inst.instance_id, this.createInstanceBroker(inst));
    this.rejecter = new Aedes({ authenticate: (_c, _u, _p, done) => this.refuse(done, BAD_USERNAME_OR_PASSWORD, 'unknown instance or not a Signature or Token username') });
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (server.address() as net.AddressInfo).port;
  }

  private async shutdownListener(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all([...this.brokers.values(), ...(this.rejecter ? [this.rejecter] : [])].map((b) => new Promise<void>((r) => b.close(() => r()))));
    this.brokers = new Map();
    this.rejecter = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private createInstanceBroker(inst: BrokerInstance): Aedes {
    const credentials = this.opts.credentials.filter((c) => inst.account === undefined || c.account === inst.account);
    const broker = new Aedes({
      id: `emulator-${inst.instance_id}`,
      authenticate: (client, username, password, done) => {
        const parsed = parseUsername(username);
        if (!isValidClientId(client.id)) return this.refuse(done, IDENTIFIER_REJECTED, `client ID ${client.id} is not <GroupId>@@@<DeviceId>`);
        if (parsed === undefined || parsed.instanceId !== inst.instance_id) return this.refuse(done, BAD_USERNAME_OR_PASSWORD, 'bad username or password');
        if (parsed.mode === 'Signature') {
          const credential = credentials.find((c) => c.access_key_id === parsed.accessKeyId);
          if (credential === undefined || !passwordMatches(credential.access_key_secret, client.id, password)) return this.refuse(done, BAD_USERNAME_OR_PASSWORD, 'bad username or password');
          this.counters.sign_ins.signature++;
          return done(null, true);
        }
        const session = this.tokenSignIn(parsed.accessKeyId, inst.instance_id, password);
        if (session === undefined) return this.refuse(done, BAD_USERNAME_OR_PASSWORD, 'bad username or password (token)');
        this.sessions.set(client, session);
        this.counters.sign_ins.token++;
        done(null, true);
      },
      // Token mode: subscribing needs an R (or RW) token whose resources cover the topic filter, publishing a W one.
      authorizeSubscribe: (client, sub, callback) => {
        const session = this.sessions.get(client);
        callback(null, session === undefined || this.permits(session, 'R', sub.topic) ? sub : null);
      },
      authorizePublish: (client, packet, callback) => {
        const session = client ? this.sessions.get(client) : undefined;
        if (client && packet.topic === UPLOAD_TOKEN_TOPIC) return this.updateToken(client, session, packet, callback);
        if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS topics are reserved'));
        callback(session === undefined || this.permits(session, 'W', packet.topic) ? null : new Error(`no write token covers ${packet.topic}`));
      },
      // A token update is for the broker, not for subscribers.
      authorizeForward: (_client, packet) => (packet.topic === UPLOAD_TOKEN_TOPIC ? null : packet),
    });
    broker.on('clientReady', (client) => {
      const session = this.sessions.get(client);
      if (session) this.scheduleTokenTimers(client, session);
    });
    broker.on('clientDisconnect', (client) => this.endSession(client));
    broker.on('clientError', (client) => this.endSession(client));
    return broker;
  }

  /** The session a Token-mode password opens, or undefined when any token in it is not valid for this sign-in. */
  private tokenSignIn(accessKeyId: string, instanceId: string, password: Buffer | undefined): TokenSession | undefined {
    const store = this.opts.tokens;
    const pairs = password === undefined ? undefined : parseTokenPassword(password.toString('utf8'));
    if (store === undefined || pairs === undefined) return undefined;
    const tokens = new Map<TokenType, IssuedToken>();
    for (const { type, token } of pairs) {
      if (store.problem(token, type, instanceId, accessKeyId) !== undefined) return undefined;
      tokens.set(type, store.lookup(token)!);
    }
    return { accessKeyId, instanceId, tokens, timers: [], noticed: new Set() };
  }

  private permits(session: TokenSession, need: 'R' | 'W', topic: string): boolean {
    const store = this.opts.tokens!;
    return [...session.tokens.values()].some((t) => (t.type === need || t.type === 'RW') && store.lapsed(t) === undefined && t.resources.some((r) => resourceCovers(r, topic)));
  }

  /**
   * `$SYS/uploadToken` {"token", "type"}: replaces the connection's token of that type (answered with PUBACK); an
   * update that is not valid is answered with an invalid-token notice, then the connection is closed (by aedes, on
   * the error).
   */
  private updateToken(client: Client, session: TokenSession | undefined, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    let update: { token?: unknown; type?: unknown } | undefined;
    try {
      update = JSON.parse(packet.payload.toString()) as { token?: unknown; type?: unknown };
    } catch {
      update = undefined;
    }
    const type = update?.type === 'R' || update?.type === 'W' || update?.type === 'RW' ? update.type : undefined;
    const token = typeof update?.token === 'string' ? update.token : undefined;
    if (session === undefined) return callback(new Error('a token update from a connection that did not sign in with a token'));
    const problem = type === undefined || token === undefined ? INVALID_TOKEN.forged : this.opts.tokens!.problem(token, type, session.instanceId, session.accessKeyId);
    if (problem !== undefined) return this.dropForToken(client, problem, type ?? 'R', () => callback(new Error(`token update refused (code ${problem})`)));
    session.tokens.set(type!, this.opts.tokens!.lookup(token!)!);
    this.counters.token_updates++;
    this.scheduleTokenTimers(client, session);
    callback(null);
  }

  /** One expiry notice per token (5 minutes ahead, or now) and the connection's end at its first token's expiry. */
  private scheduleTokenTimers(client: Client, session: TokenSession): void {
    for (const t of session.timers) clearTimeout(t);
    session.timers = [];
    const now = this.now();
    const at = (ms: number, fn: () => void) => {
      const timer = setTimeout(fn, Math.max(0, ms - now));
      timer.unref();
      session.timers.push(timer);
    };
    for (const t of session.tokens.values()) {
      if (!session.noticed.has(t.token)) {
        at(t.expiresAt - EXPIRE_NOTICE_LEAD_MS, () => {
          session.noticed.add(t.token);
          this.notify(client, EXPIRE_NOTICE_TOPIC, { expireTime: t.expiresAt, type: t.type });
        });
      }
      at(t.expiresAt, () => this.dropForToken(client, INVALID_TOKEN.expired, t.type));
    }
  }

  private notify(client: Client, topic: string, body: Record<string, unknown>, then?: () => void): void {
    if (client.closed) return then?.();
    client.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 0, retain: false, dup: false }, () => then?.());
  }

  /** Tells the client why its token is not valid, then closes the connection (`close`), as ApsaraMQ does. */
  private dropForToken(client: Client, code: number, type: TokenType, close: () => void = () => client.close()): void {
    const session = this.sessions.get(client);
    if (session === undefined || client.closed) return close();
    for (const t of session.timers) clearTimeout(t);
    session.timers = [];
    this.counters.token_disconnects++;
    this.notify(client, INVALID_NOTICE_TOPIC, { code, type }, close);
  }

  private endSession(client: Client): void {
    const session = this.sessions.get(client);
    if (session === undefined) return;
    for (const t of session.timers) clearTimeout(t);
    this.sessions.delete(client);
  }

  private refuse(done: (error: AuthenticateError | null, success: boolean | null) => void, code: number, message: string): void {
    this.counters.refused++;
    done(refusal(code, message), false);
  }

  /** Reads the CONNECT packet to pick the instance's broker, then hands it the untouched byte stream. */
  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
    const stop = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
    };
    const onEnd = () => {
      stop();
      socket.destroy();
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const peek = peekConnect(buf);
      if (peek.kind === 'incomplete' && buf.length <= MAX_CONNECT_BYTES) return;
      stop();
      if (peek.kind !== 'connect') {
        socket.destroy();
        return;
      }
      const target = this.brokers.get(parseUsername(peek.username)?.instanceId ?? '') ?? this.rejecter;
      if (target === undefined || this.closed) {
        socket.destroy();
        return;
      }
      socket.unshift(buf);
      target.handle(socket);
    };
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
  }

  private async connectScenarioDevices(d: BrokerDevices): Promise<DeviceClients> {
    const inst = this.opts.instances.find((i) => i.instance_id === d.instance_id);
    const account = d.account ?? inst?.account;
    const credential = account === undefined ? this.opts.credentials[0] : this.opts.credentials.find((c) => c.account === account);
    if (credential === undefined) throw new Error(`broker.devices: no Alibaba credential to sign in devices of ${d.instance_id}`);
    return connectDevices({
      url: this.url,
      instanceId: d.instance_id,
      accessKeyId: credential.access_key_id,
      accessKeySecret: credential.access_key_secret,
      groupId: d.group_id,
      prefix: d.prefix,
      count: d.count,
    });
  }
}
