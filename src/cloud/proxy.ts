// Which forward proxy, if any, carries an account's calls to one cloud endpoint.
//
// - `proxy_url` set on the account: that proxy, except for the hosts the account's `no_proxy` lists. The
//   environment is not read: an explicit proxy with its own list is the whole answer (as Prometheus's proxy_url and
//   no_proxy). `proxy_url: ""`: no proxy at all, whatever the environment says.
// - Otherwise the environment, read when the transport is made (not at import, so tests pass their own): https_proxy
//   or HTTPS_PROXY for https:// endpoints, http_proxy or HTTP_PROXY for http:// ones, the lower-case form first and
//   an empty value as unset (curl's order); no_proxy / NO_PROXY, plus the account's `no_proxy`, exempt hosts.
//   ALL_PROXY is not read: it often names a SOCKS proxy, which the agent cannot speak.
// - Exemption lists: NO_PROXY's syntax, as exempted() below reads it (README, "Proxies", says it for operators).
// Instance metadata and credentials-URI fetches never ask for a route (credentials/http.ts): a proxy would see
// the instance's credentials, and metadata addresses are reachable from the instance only.
import net from 'node:net';
import { parseProxyUrl, proxyDisplay, registerProxyCredentials } from '../config/proxy-url';

export type ProxyEnv = Readonly<Record<string, string | undefined>>;

/** A proxy to send requests through: its URL (credentials included, for Proxy-Authorization) and its printable name. */
export interface ProxyEndpoint {
  url: URL;
  /** scheme://host:port, never the credentials. */
  display: string;
}

export type ProxyRoute =
  | { via: 'direct'; why: string }
  | ({ via: 'proxy'; source: string } & ProxyEndpoint)
  /** The environment names a proxy that cannot be used: calls fail, naming the variable (not its value). */
  | { via: 'unusable'; source: string; problem: string };

/** The account keys that choose a route. */
export interface ProxySettings {
  proxy_url?: string;
  no_proxy?: string;
}

export function proxyRoute(endpoint: string, account: ProxySettings, env: ProxyEnv): ProxyRoute {
  const target = new URL(endpoint);
  const port = target.port ? Number(target.port) : target.protocol === 'https:' ? 443 : 80;
  if (account.proxy_url !== undefined) {
    if (account.proxy_url === '') return { via: 'direct', why: 'proxy_url is empty' };
    const url = parseProxyUrl(account.proxy_url);
    // The loader has checked it; a config built in code may not have been.
    if (!(url instanceof URL)) return { via: 'unusable', source: 'proxy_url', problem: `proxy_url ${url.problem}` };
    if (account.no_proxy && exempted(target.hostname, port, account.no_proxy)) return { via: 'direct', why: "the account's no_proxy lists the host" };
    return { via: 'proxy', source: 'proxy_url', url, display: proxyDisplay(url) };
  }
  const scheme = target.protocol === 'https:' ? 'https' : 'http';
  const variable = firstSet(env, [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`]);
  if (!variable) return { via: 'direct', why: `neither ${scheme}_proxy nor ${scheme.toUpperCase()}_PROXY is set` };
  for (const name of ['no_proxy', 'NO_PROXY']) {
    const list = env[name];
    if (list && exempted(target.hostname, port, list)) return { via: 'direct', why: `${name} lists the host` };
  }
  if (account.no_proxy && exempted(target.hostname, port, account.no_proxy)) return { via: 'direct', why: "the account's no_proxy lists the host" };
  const url = parseProxyUrl(variable.value, true);
  if (!(url instanceof URL)) return { via: 'unusable', source: variable.name, problem: `${variable.name} ${url.problem}` };
  registerProxyCredentials(url);
  return { via: 'proxy', source: variable.name, url, display: proxyDisplay(url) };
}

/** One line for --config.check: how the calls to an endpoint leave this process. */
export function describeRoute(route: ProxyRoute): string {
  switch (route.via) {
    case 'direct':
      return `direct (${route.why})`;
    case 'proxy':
      return `through proxy ${route.display} (${route.source})`;
    case 'unusable':
      return `unusable: ${route.problem}`;
  }
}

function firstSet(env: ProxyEnv, names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/**
 * Whether an exemption list covers host:port. Entries, separated by commas or spaces: `*` (everything); a domain,
 * bare or with a leading `.` or `*.` (it and every host under it); an IP literal or a CIDR block (compared with the
 * endpoint's literal address: names are not resolved); any of these with `:port` (only that port). Case and a
 * trailing dot do not matter.
 */
export function exempted(hostname: string, port: number, list: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const hostFamily = net.isIP(host);
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const cidr = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const family = net.isIP(cidr[1]);
      if (family && family === hostFamily && Number(cidr[2]) <= (family === 4 ? 32 : 128)) {
        const block = new net.BlockList();
        block.addSubnet(cidr[1], Number(cidr[2]), family === 4 ? 'ipv4' : 'ipv6');
        if (block.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
      }
      continue;
    }
    const { name, entryPort } = splitEntry(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    const family = net.isIP(name);
    if (family || hostFamily) {
      // Addresses only match addresses: "0.0.1" must not exempt 127.0.0.1 as a domain suffix would.
      if (family && family === hostFamily && sameAddress(name, host, family)) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, '').replace(/\.$/, '');
    if (domain && (host === domain || host.endsWith(`.${domain}`))) return true;
  }
  return false;
}

function splitEntry(entry: string): { name: string; entryPort?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1], entryPort: bracketed[2] === undefined ? undefined : Number(bracketed[2]) };
  // A bare IPv6 literal has colons of its own.
  if (net.isIP(entry) === 6) return { name: entry };
  const withPort = /^(.*):(\d+)$/.exec(entry);
  return withPort ? { name: withPort[1], entryPort: Number(withPort[2]) } : { name: entry };
}

function sameAddress(a: string, b: string, family: number): boolean {
  const list = new net.BlockList();
  const type = family === 4 ? 'ipv4' : 'ipv6';
  list.addAddress(a, type);
  return list.check(b, type);
}
