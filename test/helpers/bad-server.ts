// A small misbehaving HTTP server for fault tests: each mode is one way a cloud endpoint (or what sits in front of
// it) can fail. It counts connections so tests can check that the client destroyed its sockets.
import net from 'node:net';

export type BadMode =
  /** Headers at once, then one byte of body per second, forever. */
  | 'drip'
  /** Accepts, then resets the connection. */
  | 'reset'
  /** Accepts and never answers. */
  | 'blackhole'
  /** Answers with a line that is not HTTP. */
  | 'garbage'
  /** A 200 declaring a body of `hugeBytes` (Content-Length), sent as fast as the client reads. */
  | 'huge'
  /** The same body without a declared size (chunked), as a streaming proxy sends it. */
  | 'huge-chunked'
  /** A 502 HTML page, as a load balancer sends. */
  | 'html'
  /** Forwards to `upstream` (the real emulator): the fault is removed. */
  | 'proxy';

export interface BadServer {
  readonly url: string;
  readonly port: number;
  mode: BadMode;
  /** Connections open right now. */
  readonly openConnections: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

export async function startBadServer(opts: { mode: BadMode; upstream?: string; hugeBytes?: number }): Promise<BadServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const timers = new Set<NodeJS.Timeout>();
  const state = { mode: opts.mode };
  const upstream = opts.upstream ? new URL(opts.upstream) : undefined;

  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const mode = state.mode;
    if (mode === 'proxy') {
      if (!upstream) throw new Error('proxy mode needs an upstream');
      const up = net.connect(Number(upstream.port), upstream.hostname);
      up.on('error', () => socket.destroy());
      socket.pipe(up).pipe(socket);
      socket.on('close', () => up.destroy());
      return;
    }
    if (mode === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    // Read and drop whatever comes, so a client's close is seen (a paused socket never reports the peer's FIN).
    socket.resume();
    if (mode === 'blackhole') return;
    // The other modes answer once the request has arrived (its first bytes are enough).
    socket.once('data', () => {
      if (mode === 'garbage') {
        socket.end('SSH-2.0-OpenSSH_9.2 not http at all\r\n\r\n');
      } else if (mode === 'html') {
        const body = '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>';
        socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      } else if (mode === 'drip') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{');
        const timer = setInterval(() => socket.write(' '), 1000);
        timers.add(timer);
        socket.on('close', () => {
          clearInterval(timer);
          timers.delete(timer);
        });
      } else if (mode === 'huge' || mode === 'huge-chunked') {
        const total = opts.hugeBytes ?? 300 * 1024 * 1024;
        const chunked = mode === 'huge-chunked';
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${total}`}\r\n\r\n`);
        const piece = Buffer.alloc(1024 * 1024, 0x20);
        const frame = chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
        let sent = 0;
        const pump = () => {
          while (sent < total && !socket.destroyed) {
            sent += piece.length;
            if (!socket.write(frame)) return void socket.once('drain', pump);
          }
          if (!socket.destroyed) socket.end(chunked ? '0\r\n\r\n' : '');
        };
        pump();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get mode() {
      return state.mode;
    },
    /** Switches the mode and drops every open connection, so kept-alive ones meet the new mode too. */
    set mode(m: BadMode) {
      state.mode = m;
      for (const s of sockets) s.destroy();
    },
    get openConnections() {
      return sockets.size;
    },
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
