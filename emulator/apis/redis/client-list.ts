// Reads CLIENT LIST from a real Redis server over a bare RESP connection and maps it to DAS session records.
import { connect } from 'node:net';

export interface DasSession {
  Sub: number;
  Psub: number;
  Idle: number;
  Flags: string;
  Oll: number;
  QbufFree: number;
  Multi: number;
  Omem: number;
  Qbuf: number;
  Name: string;
  Obl: number;
  Client: string;
  Cmd: string;
  Id: number;
  Addr: string;
  NodeId: string;
  /** A string in DAS answers, unlike every other counter. */
  Age: string;
  Db: number;
  Events: string;
  Fd: number;
  ClientDesc: string;
}

export interface RedisTarget {
  host: string;
  port: number;
  username?: string;
  password?: string;
  timeout_ms: number;
}

type RespValue = string | number | null | RespValue[] | Error;

function encodeCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Parses one RESP2 reply at `pos`, or returns undefined if the buffer does not hold all of it yet. */
function parseReply(buf: Buffer, pos: number): { value: RespValue; next: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[pos] as number);
  const line = buf.toString('utf8', pos + 1, lineEnd);
  const after = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new Error(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items: RespValue[] = [];
      let next = after;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/** Sends the commands pipelined on a fresh connection and returns their replies in order. */
function redisPipeline(target: RedisTarget, commands: string[][]): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    let buf = Buffer.alloc(0);
    let pos = 0;
    const replies: RespValue[] = [];
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(target.timeout_ms, () => fail(new Error(`redis ${target.host}:${target.port}: no answer within ${target.timeout_ms} ms`)));
    socket.on('error', fail);
    socket.on('connect', () => socket.write(commands.map(encodeCommand).join('')));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          const r = parseReply(buf, pos);
          if (r === undefined) break;
          replies.push(r.value);
          pos = r.next;
        }
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (replies.length === commands.length) {
        socket.end();
        resolve(replies);
      }
    });
    socket.on('close', () => {
      if (replies.length < commands.length) reject(new Error(`redis ${target.host}:${target.port}: connection closed early`));
    });
  });
}

export type ClientListEntry = Record<string, string>;

export function parseClientList(text: string): ClientListEntry[] {
  const entries: ClientListEntry[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '') continue;
    const entry: ClientListEntry = {};
    for (const field of line.split(' ')) {
      const eq = field.indexOf('=');
      if (eq > 0) entry[field.slice(0, eq)] = field.slice(eq + 1);
    }
    entries.push(entry);
  }
  return entries;
}

/** "10.0.0.1:5000" → "10.0.0.1"; "[::1]:5000" → "::1"; Unix sockets keep their path. */
function ipOfAddr(addr: string): string {
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    return end < 0 ? addr : addr.slice(1, end);
  }
  const colon = addr.lastIndexOf(':');
  return colon < 0 ? addr : addr.slice(0, colon);
}

const num = (v: string | undefined, fallback = 0): number => {
  const n = Number(v);
  return v === undefined || v === '' || Number.isNaN(n) ? fallback : n;
};

export function sessionFromClientListEntry(e: ClientListEntry, nodeId: string): DasSession {
  const addr = e.addr ?? '';
  return {
    Sub: num(e.sub),
    Psub: num(e.psub),
    Idle: num(e.idle),
    Flags: e.flags ?? 'N',
    Oll: num(e.oll),
    QbufFree: num(e['qbuf-free']),
    Multi: num(e.multi, -1),
    Omem: num(e.omem),
    Qbuf: num(e.qbuf),
    Name: e.name ?? '',
    Obl: num(e.obl),
    Client: ipOfAddr(addr),
    Cmd: e.cmd ?? '',
    Id: num(e.id),
    Addr: addr,
    NodeId: nodeId,
    Age: String(num(e.age)),
    Db: num(e.db),
    Events: e.events ?? '',
    Fd: num(e.fd),
    ClientDesc: '',
  };
}

/** The server's clients, without the connection used to ask. */
export async function readRedisSessions(target: RedisTarget, nodeId: string): Promise<DasSession[]> {
  const commands: string[][] = [];
  if (target.password !== undefined) {
    commands.push(target.username !== undefined ? ['AUTH', target.username, target.password] : ['AUTH', target.password]);
  }
  commands.push(['CLIENT', 'ID'], ['CLIENT', 'LIST']);
  const replies = await redisPipeline(target, commands);
  for (const r of replies) if (r instanceof Error) throw new Error(`redis ${target.host}:${target.port}: ${r.message}`);
  const selfId = replies[replies.length - 2];
  const list = replies[replies.length - 1];
  if (typeof list !== 'string') throw new Error(`redis ${target.host}:${target.port}: CLIENT LIST returned no text`);
  return parseClientList(list)
    .filter((e) => num(e.id, -1) !== selfId)
    .map((e) => sessionFromClientListEntry(e, nodeId));
}
