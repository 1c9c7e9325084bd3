// Reads just enough of a client's first MQTT packet (CONNECT, v3.1, v3.1.1 or v5) to learn its username, so the broker
// can hand the connection to the right instance before any MQTT library touches it.

export type ConnectPeek = { kind: 'incomplete' } | { kind: 'invalid'; reason: string } | { kind: 'connect'; username: string | undefined; protocolLevel: number };

const CONNECT = 0x10;

/** Parses a CONNECT packet at the start of `buf` (which may hold more bytes after it). */
export function peekConnect(buf: Buffer): ConnectPeek {
  if (buf.length === 0) return { kind: 'incomplete' };
  if (buf[0] !== CONNECT) return { kind: 'invalid', reason: 'the first packet is not CONNECT' };
  const len = readVarInt(buf, 1);
  if (len === 'incomplete') return { kind: 'incomplete' };
  if (len === 'invalid') return { kind: 'invalid', reason: 'bad remaining length' };
  const end = len.next + len.value;
  if (buf.length < end) return { kind: 'incomplete' };
  const packet = buf.subarray(0, end);
  try {
    let at = len.next;
    const protocolName = readString(packet, at);
    at = protocolName.next;
    if (protocolName.value !== 'MQTT' && protocolName.value !== 'MQIsdp') return { kind: 'invalid', reason: `unknown protocol ${protocolName.value}` };
    const level = byteAt(packet, at++);
    const flags = byteAt(packet, at++);
    at += 2; // keep-alive
    if (level === 5) at = skipProperties(packet, at);
    at = readString(packet, at).next; // client ID
    if (flags & 0x04) {
      if (level === 5) at = skipProperties(packet, at);
      at = readString(packet, at).next; // will topic
      at = readBinaryEnd(packet, at); // will payload
    }
    const username = flags & 0x80 ? readString(packet, at).value : undefined;
    return { kind: 'connect', username, protocolLevel: level };
  } catch (err) {
    return { kind: 'invalid', reason: (err as Error).message };
  }
}

function byteAt(buf: Buffer, at: number): number {
  if (at >= buf.length) throw new Error('truncated CONNECT');
  return buf[at];
}

function readVarInt(buf: Buffer, at: number): { value: number; next: number } | 'incomplete' | 'invalid' {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (at + i >= buf.length) return 'incomplete';
    const b = buf[at + i];
    value += (b & 0x7f) * 128 ** i;
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
  }
  return 'invalid';
}

function readString(buf: Buffer, at: number): { value: string; next: number } {
  const end = readBinaryEnd(buf, at);
  return { value: buf.toString('utf8', at + 2, end), next: end };
}

function readBinaryEnd(buf: Buffer, at: number): number {
  if (at + 2 > buf.length) throw new Error('truncated CONNECT');
  const end = at + 2 + buf.readUInt16BE(at);
  if (end > buf.length) throw new Error('truncated CONNECT');
  return end;
}

function skipProperties(buf: Buffer, at: number): number {
  const len = readVarInt(buf, at);
  if (typeof len === 'string') throw new Error('bad property length');
  if (len.next + len.value > buf.length) throw new Error('truncated CONNECT');
  return len.next + len.value;
}
