// A forward proxy's URL, as the account key `proxy_url` and the HTTPS_PROXY / HTTP_PROXY variables give it: checked
// once here, named in messages without its credentials, its credentials registered for redaction.
import { registerSecret } from '../util/redact';

/**
 * The proxy URL, or a problem that does not quote it (it may hold a password). `assumeHttp`: a value without a scheme
 * means http:// (as curl and Go read the environment variables); the config key must spell it.
 */
export function parseProxyUrl(text: string, assumeHttp = false): URL | { problem: string } {
  const value = text.trim();
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
  if (!hasScheme && !assumeHttp) return { problem: 'must start with http:// or https:// (scheme://[user:password@]host[:port])' };
  const withScheme = hasScheme ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { problem: 'is not a URL such as http://proxy.example.com:3128' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `has the scheme ${url.protocol.slice(0, -1)}: only http:// and https:// proxies are supported` };
  if (!url.hostname) return { problem: 'names no host' };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return { problem: 'must be scheme://[user:password@]host[:port] only, without a path or query' };
  return url;
}

/** scheme://host:port, the port always shown: how every message names a proxy (never with its credentials). */
export function proxyDisplay(url: URL): string {
  return `${url.protocol}//${url.hostname.includes(':') && !url.hostname.startsWith('[') ? `[${url.hostname}]` : url.hostname}:${proxyPort(url)}`;
}

export function proxyPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** The user and password of a proxy URL, decoded; undefined without a user. */
export function proxyCredentials(url: URL): { user: string; password: string } | undefined {
  if (!url.username && !url.password) return undefined;
  return { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

/**
 * Masks a proxy's password wherever it could show: alone, and as `user:password`, whose base64 is the
 * Proxy-Authorization header (redact.ts masks base64 forms of what is registered). The user alone is not a secret
 * (as in Go's URL.Redacted), and masking a word like "proxy" everywhere would shred every message.
 */
export function registerProxyCredentials(url: URL): void {
  const c = proxyCredentials(url);
  if (!c?.password) return;
  registerSecret(c.password);
  registerSecret(`${c.user}:${c.password}`);
}
