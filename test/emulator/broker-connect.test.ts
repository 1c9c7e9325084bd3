// The broker's CONNECT peek: the username is found in MQTT 3.1, 3.1.1 and 5 packets, with and without a will,
// and partial or foreign first packets are told apart.
import { describe, expect, test } from 'vitest';
import { peekConnect } from '../../emulator/broker/connect';

const str = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

function connectPacket(o: { level: number; username?: string; will?: boolean; props?: Buffer }): Buffer {
  const flags = (o.username !== undefined ? 0x80 | 0x40 : 0) | (o.will ? 0x04 | 0x08 : 0) | 0x02;
  const props = o.level === 5 ? Buffer.concat([Buffer.from([(o.props ?? Buffer.alloc(0)).length]), o.props ?? Buffer.alloc(0)]) : Buffer.alloc(0);
  const parts = [str(o.level === 3 ? 'MQIsdp' : 'MQTT'), Buffer.from([o.level, flags, 0, 60]), props, str('GID_a@@@1')];
  if (o.will) parts.push(o.level === 5 ? Buffer.from([0]) : Buffer.alloc(0), str('will/topic'), str('bye'));
  if (o.username !== undefined) parts.push(str(o.username), str('password'));
  const body = Buffer.concat(parts);
  // Remaining length as a variable-length integer (bodies here stay below 16 KiB).
  const len = body.length < 128 ? Buffer.from([body.length]) : Buffer.from([(body.length & 0x7f) | 0x80, body.length >> 7]);
  return Buffer.concat([Buffer.from([0x10]), len, body]);
}

describe('peekConnect', () => {
  test.each([3, 4, 5])('MQTT level %i, with and without a will and properties', (level) => {
    const username = 'Signature|LTAI-key|post-cn-1';
    expect(peekConnect(connectPacket({ level, username }))).toEqual({ kind: 'connect', username, protocolLevel: level });
    expect(peekConnect(connectPacket({ level, username, will: true, props: Buffer.from([0x11, 0, 0, 0, 10]) }))).toEqual({ kind: 'connect', username, protocolLevel: level });
    expect(peekConnect(connectPacket({ level }))).toEqual({ kind: 'connect', username: undefined, protocolLevel: level });
  });

  test('a long packet split anywhere is incomplete until its last byte; trailing bytes are ignored', () => {
    const full = connectPacket({ level: 4, username: `Signature|${'k'.repeat(300)}|post-cn-1` });
    for (const cut of [1, 2, 3, 10, full.length - 1]) expect(peekConnect(full.subarray(0, cut)).kind).toBe('incomplete');
    expect(peekConnect(Buffer.concat([full, Buffer.from([0xc0, 0])])).kind).toBe('connect');
  });

  test('not a CONNECT, an unknown protocol name, or a truncated field is invalid', () => {
    expect(peekConnect(Buffer.from('GET / HTTP/1.1\r\n')).kind).toBe('invalid');
    const bad = connectPacket({ level: 4, username: 'u' });
    bad.write('XQTT', 4);
    expect(peekConnect(bad)).toMatchObject({ kind: 'invalid' });
    const truncated = Buffer.from([0x10, 4, 0, 4, 0x4d, 0x51]);
    expect(peekConnect(truncated)).toMatchObject({ kind: 'invalid' });
  });
});
