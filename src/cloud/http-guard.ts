// Bounds every HTTP exchange a cloud SDK makes, whatever the SDK does with its own timeouts: one timer covers the
// queue for a socket, DNS, connect, headers and body; an abort signal ends it early; a body beyond a size cap ends it
// too. Ending an exchange destroys its request, so its socket never lingers in the agent.
//
// Why here and not in the SDKs' options: pop-core's httpx rejects on its read timer without destroying the response
// (the socket then never returns to the agent, and after maxSockets of those every later call queues forever), takes
// no abort signal, and buffers any body whole; the Tencent SDK's node-fetch has no size limit. Both SDKs accept an
// http.Agent, and every request they make passes through its addRequest() inside the caller's async context, so an
// agent that looks up the current exchange there can watch and end each request without changing either SDK.
//
// Through a forward proxy (proxy-agent.ts) the same timer covers the connection to the proxy, the CONNECT handshake
// and the cloud's answer; a failure of the proxy ends the exchange as such, naming the proxy.
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import { reclaimSoon } from '../util/reclaim';
import type { ProxyEndpoint } from './proxy';
import { proxiedAgent, proxyAnswerFailure, proxyFailureOf, type ProxyError } from './proxy-agent';

export type ExchangeFailureKind = 'Timeout' | 'ResponseTooLarge' | 'Aborted' | 'UnexpectedEncoding' | 'Proxy';

/** Why the guard ended an exchange; transports turn it into their CloudError. */
export class ExchangeFailure extends Error {
  constructor(
    readonly kind: ExchangeFailureKind,
    message: string,
    /** For Aborted: the signal's reason. */
    readonly reason?: unknown,
    /** For Proxy: what the proxy did. */
    readonly proxy?: ProxyError,
  ) {
    super(message);
    this.name = 'ExchangeFailure';
  }
}

export interface ExchangeLimits {
  /** Whole exchange, from the call to the last body byte. */
  timeoutMs: number;
  /** Response body bytes as received; more fails the exchange with ResponseTooLarge. */
  maxResponseBytes: number;
  signal?: AbortSignal;
}

class Exchange {
  failure: ExchangeFailure | undefined;
  private readonly requests = new Set<http.ClientRequest>();
  private finished = false;
  /** The proxy the exchange's requests went through, named in a timeout's message. */
  private proxy: ProxyEndpoint | undefined;

  constructor(
    private readonly limits: ExchangeLimits,
    private readonly onFail: (f: ExchangeFailure) => void,
  ) {}

  attach(req: http.ClientRequest, proxy: ProxyEndpoint | undefined): void {
    if (this.failure || this.finished) {
      req.destroy();
      return;
    }
    this.requests.add(req);
    req.once('close', () => this.requests.delete(req));
    if (proxy) {
      this.proxy = proxy;
      req.on('error', (err) => {
        const failure = proxyFailureOf(req, err);
        if (failure) this.fail(new ExchangeFailure('Proxy', failure.message, undefined, failure));
      });
    }
    // Compressed answers would make the size cap meaningless (a small body can inflate to gigabytes): ask for none,
    // and refuse one that comes anyway. Neither SDK signs Accept-Encoding.
    try {
      req.setHeader('accept-encoding', 'identity');
    } catch {
      // Headers already sent: the response check below still applies.
    }
    req.once('response', (res: http.IncomingMessage) => {
      const refused = proxy && proxyAnswerFailure(req, res.statusCode);
      if (refused) {
        this.fail(new ExchangeFailure('Proxy', refused.message, undefined, refused));
        return;
      }
      const encoding = String(res.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (encoding !== 'identity' && encoding !== '') {
        this.fail(new ExchangeFailure('UnexpectedEncoding', `the answer is ${encoding}-encoded although none was asked for`));
        return;
      }
      const max = this.limits.maxResponseBytes;
      // A declared size over the cap fails before a byte of the body is read (no memory spent on it at all).
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > max) {
        this.fail(new ExchangeFailure('ResponseTooLarge', `the answer declares ${declared} bytes, more than ${max}`));
        return;
      }
      // Counted where the parser hands body bytes to the stream, so the SDK's own reading is left as it is.
      let bytes = 0;
      const push = res.push.bind(res);
      res.push = (chunk: unknown, enc?: BufferEncoding) => {
        if (chunk !== null && chunk !== undefined) {
          bytes += (chunk as { length: number }).length;
          if (bytes > max) {
            this.fail(new ExchangeFailure('ResponseTooLarge', `the answer is larger than ${max} bytes`));
            // The bytes read so far are garbage now; without a collection they would stay resident for long.
            reclaimSoon();
            return false;
          }
        }
        return push(chunk, enc);
      };
    });
  }

  fail(failure: ExchangeFailure): void {
    if (this.failure || this.finished) return;
    if (failure.kind === 'Timeout' && this.proxy) failure = new ExchangeFailure('Timeout', `${failure.message} (through proxy ${this.proxy.display})`);
    this.failure = failure;
    for (const req of this.requests) req.destroy();
    this.requests.clear();
    this.onFail(failure);
  }

  finish(): void {
    this.finished = true;
    // A request the SDK left open (it should not) goes too: nothing may outlive its exchange.
    for (const req of this.requests) req.destroy();
    this.requests.clear();
  }
}

const currentExchange = new AsyncLocalStorage<Exchange>();

/**
 * Runs `fn` (one SDK call) as one bounded exchange. Rejects with an ExchangeFailure as soon as a limit is hit,
 * without waiting for the SDK to notice; the SDK's own later rejection is swallowed.
 */
export function boundedExchange<T>(limits: ExchangeLimits, fn: () => Promise<T>): Promise<T> {
  const { signal } = limits;
  if (signal?.aborted) return Promise.reject(new ExchangeFailure('Aborted', 'aborted before it started', signal.reason));
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => exchange.fail(new ExchangeFailure('Aborted', 'aborted', signal?.reason));
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      exchange.finish();
    };
    const exchange = new Exchange(limits, (failure) => {
      cleanup();
      reject(failure);
    });
    timer = setTimeout(() => exchange.fail(new ExchangeFailure('Timeout', `no complete answer within ${limits.timeoutMs} ms`)), Math.max(1, limits.timeoutMs));
    signal?.addEventListener('abort', onAbort, { once: true });
    currentExchange.run(exchange, fn).then(
      (value) => {
        if (exchange.failure) return;
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        if (exchange.failure) return;
        cleanup();
        reject(err);
      },
    );
  });
}

export interface GuardedAgentOptions {
  maxSockets: number;
  /** Every request goes through this proxy (proxy.ts decides which, if any). */
  proxy?: ProxyEndpoint;
}

/** A keep-alive agent whose requests are bounded by the exchange that made them (see boundedExchange). */
export function guardedAgent(protocol: 'http:' | 'https:', opts: GuardedAgentOptions): http.Agent {
  const agentOpts = { keepAlive: true, keepAliveMsecs: 3000, maxSockets: opts.maxSockets };
  const agent = opts.proxy ? proxiedAgent(protocol, agentOpts, opts.proxy) : protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  // addRequest is how http.request hands every request to its agent; it is not in @types/node.
  const internal = agent as unknown as { addRequest(req: http.ClientRequest, options: unknown): void };
  const addRequest = internal.addRequest.bind(agent);
  internal.addRequest = (req, options) => {
    currentExchange.getStore()?.attach(req, opts.proxy);
    addRequest(req, options);
  };
  return agent;
}
