// The emulator's embedded MQTT broker (aedes): one isolated broker per ApsaraMQ instance behind one TCP port, ApsaraMQ
// Signature sign-in against the scenario's credentials, delivery of messages published through the cloud API (QoS 1)
// with drop and delay faults, and the real connection state that `status_from_broker` instances report.
import net from 'node:net';
import Aedes, { type AuthenticateError, type Client } from 'aedes';
import { isValidClientId, parseSignatureUsername, passwordMatches } from './auth';
import { peekConnect } from './connect';
import { connectDevices, type DeviceClients } from './devices';
import { BrokerFaultsPatchSchema, type BrokerDevices, type BrokerFaults } from './scenario';
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
  faults?: BrokerFaults;
  /** Real device connections opened once the broker listens. */
  devices?: readonly BrokerDevices[];
  random?: () => number;
}

export interface BrokerStats {
  /** Messages published through the cloud API and handed to the broker. */
  published: number;
  dropped: number;
  delayed: number;
  /** Sign-ins refused (bad username or password, unknown instance, bad client ID). */
  refused: number;
  connections: number;
}

// Return codes of MQTT 3.1.1 CONNACK; aedes maps them to the v5 reason codes itself.
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_CONNECT_BYTES = 64 * 1024;

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class MqttBroker {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private brokers = new Map<string, Aedes>();
  /** Takes connections for unknown instances or malformed usernames, and refuses them. */
  private rejecter: Aedes | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private currentFaults: BrokerFaults;
  private readonly counters: Omit<BrokerStats, 'connections'> = { published: 0, dropped: 0, delayed: 0, refused: 0 };
  private deviceClients: DeviceClients[] = [];
  private boundPort = 0;
  private closed = false;
  private readonly random: () => number;

  private constructor(private readonly opts: MqttBrokerOptions) {
    this.currentFaults = opts.faults ?? { drop_rate: 0, delay_ms: { min: 0, max: 0 } };
    this.random = opts.random ?? Math.random;
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
    return { ...this.counters, connections };
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
    this.rejecter = new Aedes({ authenticate: (_c, _u, _p, done) => this.refuse(done, BAD_USERNAME_OR_PASSWORD, 'unknown instance or not a Signature username') });
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
    return new Aedes({
      id: `emulator-${inst.instance_id}`,
      authenticate: (client, username, password, done) => {
        const parsed = parseSignatureUsername(username);
        const credential = parsed && parsed.instanceId === inst.instance_id ? credentials.find((c) => c.access_key_id === parsed.accessKeyId) : undefined;
        if (!isValidClientId(client.id)) return this.refuse(done, IDENTIFIER_REJECTED, `client ID ${client.id} is not <GroupId>@@@<DeviceId>`);
        if (credential === undefined || !passwordMatches(credential.access_key_secret, client.id, password)) {
          return this.refuse(done, BAD_USERNAME_OR_PASSWORD, 'bad username or password');
        }
        done(null, true);
      },
    });
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
      const target = this.brokers.get(parseSignatureUsername(peek.username)?.instanceId ?? '') ?? this.rejecter;
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
