// Which proxy a call takes (src/cloud/proxy.ts): the environment's variables and their precedence, NO_PROXY's
// matching rules, and the account's proxy_url / no_proxy, which override the environment.
import { describe, expect, test } from 'vitest';
import { describeRoute, exempted, proxyRoute, type ProxyRoute } from '../../src/cloud/proxy';
import { redact } from '../../src/util/redact';

const via = (r: ProxyRoute): string => (r.via === 'proxy' ? `${r.display} ${r.source}` : r.via);

describe('the environment', () => {
  test('https endpoints take https_proxy before HTTPS_PROXY, http endpoints http_proxy before HTTP_PROXY; an empty value counts as unset', () => {
    const env = { https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128', HTTP_PROXY: 'http://plain:8080' };
    expect(via(proxyRoute('https://onsmqtt.cn-hangzhou.aliyuncs.com', {}, env))).toBe('http://lower:3128 https_proxy');
    expect(via(proxyRoute('http://127.0.0.1:18080', {}, env))).toBe('http://plain:8080 HTTP_PROXY');
    expect(via(proxyRoute('https://das.cn-shanghai.aliyuncs.com', {}, { https_proxy: '  ', HTTPS_PROXY: 'http://upper:3128' }))).toBe('http://upper:3128 HTTPS_PROXY');
    // An https endpoint never falls back to HTTP_PROXY, nor an http one to HTTPS_PROXY.
    expect(proxyRoute('https://mongodb.tencentcloudapi.com', {}, { HTTP_PROXY: 'http://plain:8080' })).toEqual({ via: 'direct', why: 'neither https_proxy nor HTTPS_PROXY is set' });
    expect(proxyRoute('http://127.0.0.1:1', {}, { HTTPS_PROXY: 'http://upper:3128' }).via).toBe('direct');
    // ALL_PROXY is not read.
    expect(proxyRoute('https://mongodb.tencentcloudapi.com', {}, { ALL_PROXY: 'socks5://s:1080', all_proxy: 'http://a:1' }).via).toBe('direct');
  });

  test('a value without a scheme is http://, a port defaults to the scheme\'s, and the name never carries the credentials', () => {
    expect(via(proxyRoute('https://x.example.com', {}, { HTTPS_PROXY: 'proxy.corp:3128' }))).toBe('http://proxy.corp:3128 HTTPS_PROXY');
    expect(via(proxyRoute('https://x.example.com', {}, { HTTPS_PROXY: 'https://proxy.corp' }))).toBe('https://proxy.corp:443 HTTPS_PROXY');
    const r = proxyRoute('https://x.example.com', {}, { HTTPS_PROXY: 'http://svc:Pr0xy-Pa55w0rd-env@proxy.corp:3128' });
    expect(describeRoute(r)).toBe('through proxy http://proxy.corp:3128 (HTTPS_PROXY)');
    // Reading the variable registered the password for redaction.
    expect(redact('echo: Pr0xy-Pa55w0rd-env')).toBe('echo: REDACTED');
  });

  test('an unusable variable makes the route unusable, named by the variable and never by its value', () => {
    const r = proxyRoute('https://x.example.com', {}, { HTTPS_PROXY: 'socks5://u:s3cret-socks@p:1080' });
    expect(r).toEqual({ via: 'unusable', source: 'HTTPS_PROXY', problem: 'HTTPS_PROXY has the scheme socks5: only http:// and https:// proxies are supported' });
    expect(describeRoute(proxyRoute('https://x.example.com', {}, { https_proxy: 'http://p:3128/some/path' }))).toBe(
      'unusable: https_proxy must be scheme://[user:password@]host[:port] only, without a path or query',
    );
  });

  test('NO_PROXY (either case, the lower-case first) and the account\'s no_proxy exempt hosts from environment proxies', () => {
    const env = { HTTPS_PROXY: 'http://p:3128', NO_PROXY: 'internal.example.com' };
    expect(proxyRoute('https://api.internal.example.com', {}, env)).toEqual({ via: 'direct', why: 'NO_PROXY lists the host' });
    expect(proxyRoute('https://api.internal.example.com', {}, { ...env, no_proxy: '.example.com' })).toEqual({ via: 'direct', why: 'no_proxy lists the host' });
    expect(proxyRoute('https://das.vpc-proxy.aliyuncs.com', { no_proxy: 'vpc-proxy.aliyuncs.com' }, env)).toEqual({ via: 'direct', why: "the account's no_proxy lists the host" });
    expect(proxyRoute('https://das.cn-shanghai.aliyuncs.com', { no_proxy: 'vpc-proxy.aliyuncs.com' }, env).via).toBe('proxy');
  });
});

describe('the account', () => {
  const env = { HTTPS_PROXY: 'http://env-proxy:3128', HTTP_PROXY: 'http://env-proxy:3128', NO_PROXY: '*' };

  test('proxy_url overrides the environment for every endpoint, NO_PROXY included; only the account\'s no_proxy exempts', () => {
    expect(via(proxyRoute('https://x.example.com', { proxy_url: 'http://mine:8080' }, env))).toBe('http://mine:8080 proxy_url');
    expect(via(proxyRoute('http://127.0.0.1:18080', { proxy_url: 'https://mine' }, env))).toBe('https://mine:443 proxy_url');
    expect(proxyRoute('https://x.example.com', { proxy_url: 'http://mine:8080', no_proxy: 'example.com' }, env)).toEqual({ via: 'direct', why: "the account's no_proxy lists the host" });
  });

  test('proxy_url: "" means no proxy whatever the environment says', () => {
    expect(proxyRoute('https://x.example.com', { proxy_url: '' }, { HTTPS_PROXY: 'http://env-proxy:3128' })).toEqual({ via: 'direct', why: 'proxy_url is empty' });
  });
});

describe('NO_PROXY matching', () => {
  // [list, host, port, exempted]
  const cases: Array<[string, string, number, boolean]> = [
    ['*', 'anything.example.com', 443, true],
    ['example.com', 'example.com', 443, true],
    ['example.com', 'api.example.com', 443, true],
    ['example.com', 'badexample.com', 443, false],
    ['.example.com', 'example.com', 443, true],
    ['.example.com', 'a.b.example.com', 443, true],
    ['*.example.com', 'a.example.com', 443, true],
    ['*.example.com', 'example.org', 443, false],
    ['EXAMPLE.com.', 'Api.Example.COM', 443, true],
    ['example.com', 'api.example.com.', 443, true],
    ['example.com:8443', 'api.example.com', 8443, true],
    ['example.com:8443', 'api.example.com', 443, false],
    ['10.0.0.7', '10.0.0.7', 80, true],
    ['10.0.0.7', '10.0.0.70', 80, false],
    // An address is not a domain suffix of another address.
    ['0.0.1', '127.0.0.1', 80, false],
    ['127.0.0.1:18080', '127.0.0.1', 18080, true],
    ['127.0.0.1:18080', '127.0.0.1', 18081, false],
    ['10.0.0.0/8', '10.200.3.4', 443, true],
    ['10.0.0.0/8', '11.0.0.1', 443, false],
    ['10.0.0.0/8', 'ten.example.com', 443, false],
    ['::1', '[::1]', 443, true],
    ['[::1]:8080', '[::1]', 8080, true],
    ['[::1]:8080', '[::1]', 443, false],
    ['0:0:0:0:0:0:0:1', '[::1]', 443, true],
    ['fd00::/8', '[fd12::5]', 443, true],
    // Host names are not resolved: an address entry never exempts a name.
    ['127.0.0.1', 'localhost', 80, false],
    ['a.example.com, b.example.com  c.example.com', 'c.example.com', 443, true],
    [' , ,', 'x.example.com', 443, false],
    ['100.100.100.200', '100.100.100.200', 80, true],
  ];
  test.each(cases)('%j exempts %s port %d: %s', (list, host, port, expected) => {
    expect(exempted(host, port, list)).toBe(expected);
  });

  test('the port an endpoint uses by default is the one a host:port entry is compared with', () => {
    expect(proxyRoute('https://api.example.com', {}, { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'api.example.com:443' }).via).toBe('direct');
    expect(proxyRoute('http://api.example.com', {}, { HTTP_PROXY: 'http://p:1', NO_PROXY: 'api.example.com:443' }).via).toBe('proxy');
  });
});
