// Reads and validates an exporter-toolkit web configuration file (--web.config.file): TLS and client certificates,
// response headers, basic auth users and rate limit, with every problem reported at once by key path and line.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { firstCertificate, keyMismatch, pemCertificates, privateKey } from '../util/pem';
import { bcryptHashProblem } from './basic-auth';
import { Secret } from './secret';
import { GO_CIPHER_SUITES, GO_CURVES, GO_INSECURE_CIPHER_SUITES, GO_TLS_VERSIONS, HTTP2_REQUIRED_CIPHER_SUITES, TLS13_CIPHER_SUITES } from './tls-names';

export class WebConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.length} problem(s) in the web configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'WebConfigError';
  }
}

const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** Response headers the toolkit lets a file set, and the only values allowed where it restricts them. */
const ALLOWED_HEADERS: ReadonlyMap<string, readonly string[] | undefined> = new Map([
  ['Content-Security-Policy', undefined],
  ['X-Frame-Options', ['deny', 'sameorigin']],
  ['X-Content-Type-Options', ['nosniff']],
  ['X-XSS-Protection', undefined],
  ['Strict-Transport-Security', undefined],
]);

export interface TlsServerConfig {
  /** PEM, serving certificate first, then any intermediates. */
  cert: string;
  key: Secret;
  clientCa?: string;
  clientAuth: ClientAuthType;
  clientAllowedSans?: readonly string[];
  /** Go names (TLS12), as written in the file. */
  minVersion: string;
  maxVersion: string;
  /** Go names, as written; empty means Node's defaults. */
  cipherSuites: readonly string[];
  preferServerCipherSuites: boolean;
  curvePreferences: readonly string[];
  /** Of the serving certificate, in the AA:BB:… form Node's getPeerCertificate().fingerprint256 uses. */
  certFingerprint256: string;
  certSubject: string;
  certNotAfter: Date;
}

export interface WebConfig {
  file: string;
  /** Absent: plain HTTP. */
  tls?: TlsServerConfig;
  /** Accepted for compatibility; Node's https server speaks HTTP/1.1 only. */
  http2: boolean;
  headers: Readonly<Record<string, string>>;
  /** User name → bcrypt hash; empty means no basic auth. */
  users: ReadonlyMap<string, Secret>;
  /** Absent: no rate limit. */
  rateLimit?: { intervalMs: number; burst: number };
  /** Accepted settings that probably do not do what the author meant. */
  warnings: readonly string[];
}

/** What one read of the file produced, and what to watch to notice the next change (also after a failure). */
export interface WebConfigRead {
  config?: WebConfig;
  error?: WebConfigError;
  /** The config file and every file it names, in the order they were read. */
  files: readonly string[];
  /** Over the content of `files`; the same as fingerprintFiles(files) gives while nothing changes. */
  fingerprint: string;
}

/** Parses and validates `file` and everything it names; throws a WebConfigError listing every problem. */
export function loadWebConfig(file: string): WebConfig {
  const read = readWebConfig(file);
  if (read.error) throw read.error;
  return read.config!;
}

/** For --web.config.check: a summary of what the file sets up, or the WebConfigError. */
export function checkWebConfig(file: string): string {
  return describeWebConfig(loadWebConfig(file));
}

export function readWebConfig(file: string): WebConfigRead {
  const abs = path.resolve(file);
  const reader = new RecordingReader();
  let text: string;
  try {
    text = reader.read(abs).toString('utf8');
  } catch (err) {
    return reader.result({ error: new WebConfigError(file, [`cannot read the file: ${errnoText(err)}`]) });
  }
  const problems: string[] = [];
  const config = parseWebConfig(text, abs, path.dirname(abs), reader, problems);
  return reader.result(problems.length ? { error: new WebConfigError(file, problems) } : { config });
}

/** Reads `files` again and fingerprints them the way readWebConfig did; async so that polling never blocks requests. */
export async function fingerprintFiles(files: readonly string[]): Promise<string> {
  const h = crypto.createHash('sha256');
  for (const f of files) {
    let content: Buffer | string;
    try {
      content = await fs.promises.readFile(f);
    } catch (err) {
      content = `missing:${(err as NodeJS.ErrnoException).code}`;
    }
    fingerprintPart(h, f, content);
  }
  return h.digest('hex');
}

/** What node:tls needs for this config; the key leaves its Secret only here. */
export function nodeTlsOptions(t: TlsServerConfig): { context: tls.SecureContextOptions; requestCert: boolean } {
  const ciphers = t.cipherSuites.map((c) => GO_CIPHER_SUITES.get(c)).filter((c): c is string => !!c);
  return {
    context: {
      cert: t.cert,
      key: t.key.reveal(),
      ca: t.clientCa,
      minVersion: GO_TLS_VERSIONS.get(t.minVersion),
      maxVersion: GO_TLS_VERSIONS.get(t.maxVersion),
      ciphers: t.cipherSuites.length ? [...ciphers, TLS13_CIPHER_SUITES].join(':') : undefined,
      honorCipherOrder: t.preferServerCipherSuites,
      ecdhCurve: t.curvePreferences.length ? t.curvePreferences.map((c) => GO_CURVES.get(c)).join(':') : undefined,
    },
    requestCert: t.clientAuth !== 'NoClientCert',
  };
}

function describeWebConfig(c: WebConfig): string {
  const out = [`${c.file}: the web configuration is valid.`];
  if (c.tls) {
    const t = c.tls;
    out.push(`  TLS: ${t.minVersion} to ${t.maxVersion}; certificate ${t.certSubject}, valid until ${t.certNotAfter.toISOString()}, SHA-256 ${t.certFingerprint256}`);
    out.push(`  client certificates: ${t.clientAuth}${t.clientCa ? ` (client CA: ${pemCertificates(t.clientCa).length} certificate(s))` : ''}${t.clientAllowedSans ? `; allowed SANs: ${t.clientAllowedSans.join(', ')}` : ''}`);
    out.push(`  cipher suites: ${t.cipherSuites.length ? t.cipherSuites.join(', ') : "Node's defaults"}${t.preferServerCipherSuites ? " (server's order)" : " (client's order)"}`);
    out.push(`  curves: ${t.curvePreferences.length ? t.curvePreferences.join(', ') : "Node's defaults"}`);
    out.push(`  HTTP/2: ${c.http2 ? 'enabled in the file, but Node serves HTTP/1.1 only' : 'off'}`);
  } else {
    out.push('  TLS: off (plain HTTP)');
  }
  const headers = Object.keys(c.headers);
  out.push(`  response headers: ${headers.length ? headers.join(', ') : 'none added'}`);
  out.push(`  basic auth: ${c.users.size ? `${c.users.size} user(s): ${[...c.users.keys()].join(', ')}` : 'off'}`);
  out.push(`  rate limit: ${c.rateLimit ? `1 request per ${formatMs(c.rateLimit.intervalMs)}, burst ${c.rateLimit.burst}, for the whole server` : 'off'}`);
  for (const w of c.warnings) out.push(`  warning: ${w}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------------

type PathPart = string | number;
type YNode = unknown;

class RecordingReader {
  private readonly parts: Array<{ file: string; content: Buffer | string }> = [];

  read(file: string): Buffer {
    try {
      const content = fs.readFileSync(file);
      this.record(file, content);
      return content;
    } catch (err) {
      this.record(file, `missing:${(err as NodeJS.ErrnoException).code}`);
      throw err;
    }
  }

  result(r: { config?: WebConfig; error?: WebConfigError }): WebConfigRead {
    const h = crypto.createHash('sha256');
    for (const p of this.parts) fingerprintPart(h, p.file, p.content);
    return { ...r, files: this.parts.map((p) => p.file), fingerprint: h.digest('hex') };
  }

  private record(file: string, content: Buffer | string): void {
    if (!this.parts.some((p) => p.file === file)) this.parts.push({ file, content });
  }
}

function fingerprintPart(h: crypto.Hash, file: string, content: Buffer | string): void {
  h.update(file).update('\0').update(crypto.createHash('sha256').update(content).digest()).update('\0');
}

interface Field {
  path: PathPart[];
  /** The key node when the field was written; undefined for a missing field. */
  key?: YNode;
  value: YNode;
}

/** Walks the YAML tree, reporting each problem with its key path and line. */
class Walker {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    readonly problems: string[],
  ) {}

  report(f: { path: PathPart[]; key?: YNode; value?: YNode }, msg: string): void {
    const line = this.line(f.key) ?? this.line(f.value);
    this.problems.push(`${formatPath(f.path)}${line ? ` (line ${line})` : ''}: ${msg}`);
  }

  line(node: YNode): number | undefined {
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    return range ? this.lines.linePos(range[0]).line : undefined;
  }

  resolve(node: YNode): YNode {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** The fields of a mapping, each unknown key reported; undefined (after a report) when `f` is not a mapping. */
  mapping(f: Field, allowed: readonly string[] | undefined, what: string): Map<string, Field> | undefined {
    const node = this.resolve(f.value);
    const out = new Map<string, Field>();
    if (isNull(node)) return out;
    if (!isMap(node)) {
      this.report(f, `must be a mapping of ${what}`);
      return undefined;
    }
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key);
      const name = isScalar(keyNode) ? scalarText(keyNode) : undefined;
      if (name === undefined) {
        this.report({ path: f.path, key: pair.key }, 'keys must be plain strings');
        continue;
      }
      const field: Field = { path: [...f.path, name], key: pair.key, value: pair.value };
      const earlier = out.get(name);
      if (earlier) {
        this.report(field, `is given twice (first on line ${this.line(earlier.key)})`);
        continue;
      }
      if (allowed && !allowed.includes(name)) {
        this.report(field, `unknown key "${name}" (allowed: ${allowed.join(', ')})`);
        continue;
      }
      out.set(name, field);
    }
    return out;
  }

  /** A string setting; undefined when absent, null or empty (the toolkit treats those alike). */
  string(f: Field | undefined): string | undefined {
    if (!f) return undefined;
    const node = this.resolve(f.value);
    if (isNull(node)) return undefined;
    if (!isScalar(node)) {
      this.report(f, 'must be a string');
      return undefined;
    }
    const text = scalarText(node);
    return text === '' ? undefined : text;
  }

  boolean(f: Field | undefined): boolean | undefined {
    if (!f) return undefined;
    const node = this.resolve(f.value);
    if (isNull(node)) return undefined;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.report(f, 'must be true or false');
    return undefined;
  }

  integer(f: Field | undefined): number | undefined {
    if (!f) return undefined;
    const node = this.resolve(f.value);
    if (isNull(node)) return undefined;
    if (isScalar(node) && typeof node.value === 'number' && Number.isSafeInteger(node.value)) return node.value;
    this.report(f, 'must be a whole number');
    return undefined;
  }

  /** Each entry of a list of strings, with the field it came from (for its line). */
  strings(f: Field | undefined): Array<{ value: string; field: Field }> | undefined {
    if (!f) return undefined;
    const node = this.resolve(f.value);
    if (isNull(node)) return undefined;
    if (!isSeq(node)) {
      this.report(f, 'must be a list of strings');
      return undefined;
    }
    const out: Array<{ value: string; field: Field }> = [];
    node.items.forEach((item, i) => {
      const field: Field = { path: [...f.path, i], value: item };
      const v = this.string(field);
      if (v !== undefined) out.push({ value: v, field });
      else if (isNull(this.resolve(item))) this.report(field, 'must not be empty');
    });
    return out;
  }
}

const TOP_KEYS = ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit'];
const TLS_KEYS = [
  'cert',
  'key',
  'client_ca',
  'cert_file',
  'key_file',
  'client_auth_type',
  'client_ca_file',
  'cipher_suites',
  'curve_preferences',
  'min_version',
  'max_version',
  'prefer_server_cipher_suites',
  'client_allowed_sans',
];

function parseWebConfig(text: string, file: string, dir: string, reader: RecordingReader, problems: string[]): WebConfig | undefined {
  const lines = new LineCounter();
  // YAML 1.1 like the toolkit's go-yaml v2: yes/no/on/off are booleans there too.
  // Duplicate keys are found by the Walker, which can name their path; go-yaml's strict mode refuses them as well.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: false, version: '1.1' });
  for (const e of doc.errors) {
    const pos = e.linePos?.[0];
    const msg = `${pos ? `line ${pos.line}: ` : ''}YAML syntax: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`;
    if (!problems.includes(msg)) problems.push(msg);
  }
  if (problems.length) return undefined;

  const w = new Walker(doc, lines, problems);
  const top = w.mapping({ path: [], value: doc.contents }, TOP_KEYS, TOP_KEYS.join(', '));
  if (!top) return undefined;
  const warnings: string[] = [];

  const httpFields = w.mapping(top.get('http_server_config') ?? { path: ['http_server_config'], value: null }, ['http2', 'headers'], 'http2, headers');
  const http2 = w.boolean(httpFields?.get('http2')) ?? true;
  const headers = parseHeaders(w, httpFields?.get('headers'));
  const tlsConfig = parseTls(w, top.get('tls_server_config'), { dir, reader, http2, warnings });
  const users = parseUsers(w, top.get('basic_auth_users'), warnings);
  const rateLimit = parseRateLimit(w, top.get('rate_limit'), warnings);

  if (problems.length) {
    sortByLine(problems);
    return undefined;
  }
  return { file, tls: tlsConfig, http2, headers, users, rateLimit, warnings };
}

function parseHeaders(w: Walker, f: Field | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!f) return out;
  const fields = w.mapping(f, undefined, 'header names to values');
  for (const [name, field] of fields ?? []) {
    // Exact, case-sensitive names, as the toolkit matches them: a file passing here passes there.
    if (!ALLOWED_HEADERS.has(name)) {
      w.report(field, `HTTP header "${name}" can not be configured (allowed: ${[...ALLOWED_HEADERS.keys()].join(', ')})`);
      continue;
    }
    const value = w.string(field);
    if (value === undefined) continue;
    const allowed = ALLOWED_HEADERS.get(name);
    if (allowed && !allowed.includes(value)) {
      w.report(field, `invalid value "${value}" for ${name}: expected one of ${allowed.map((v) => `"${v}"`).join(', ')}`);
      continue;
    }
    out[name] = value;
  }
  return out;
}

interface TlsContext {
  dir: string;
  reader: RecordingReader;
  http2: boolean;
  warnings: string[];
}

function parseTls(w: Walker, f: Field | undefined, ctx: TlsContext): TlsServerConfig | undefined {
  if (!f) return undefined;
  const fields = w.mapping(f, TLS_KEYS, 'TLS settings');
  if (!fields) return undefined;
  const before = w.problems.length;
  const str = (k: string) => w.string(fields.get(k));
  const field = (k: string): Field => fields.get(k) ?? { path: [...f.path, k], key: f.key, value: undefined };

  const cert = str('cert');
  const certFile = str('cert_file');
  const key = str('key');
  const keyFile = str('key_file');
  const clientCa = str('client_ca');
  const clientCaFile = str('client_ca_file');
  const clientAuthText = str('client_auth_type');
  const sans = w.strings(fields.get('client_allowed_sans'));
  const ciphers = w.strings(fields.get('cipher_suites')) ?? [];
  const curves = w.strings(fields.get('curve_preferences')) ?? [];
  const minVersion = str('min_version') ?? 'TLS12';
  const maxVersion = str('max_version') ?? 'TLS13';
  const preferServer = w.boolean(fields.get('prefer_server_cipher_suites')) ?? true;

  let clientAuth: ClientAuthType | undefined = 'NoClientCert';
  if (clientAuthText !== undefined) {
    // RequireClientCert is the toolkit's old spelling, still accepted there.
    const canonical = clientAuthText === 'RequireClientCert' ? 'RequireAnyClientCert' : clientAuthText;
    if ((CLIENT_AUTH_TYPES as readonly string[]).includes(canonical)) clientAuth = canonical as ClientAuthType;
    else {
      w.report(field('client_auth_type'), `unknown client_auth_type "${clientAuthText}" (one of: ${CLIENT_AUTH_TYPES.join(', ')})`);
      // Unknown, not NoClientCert: the checks below that depend on it would only add noise.
      clientAuth = undefined;
    }
  }

  if (sans && clientAuth) {
    if (!sans.length) w.report(field('client_allowed_sans'), 'is an empty list, which no client certificate could match: list SANs or remove the key');
    if (clientAuth === 'NoClientCert') {
      w.report(
        field('client_allowed_sans'),
        'needs a client_auth_type that asks for client certificates (RequireAndVerifyClientCert to trust only certificates your CA signed); under NoClientCert no certificate is ever asked for, so the list would check nothing',
      );
    } else if (clientAuth === 'RequestClientCert' || clientAuth === 'RequireAnyClientCert') {
      ctx.warnings.push(`client_allowed_sans is checked against a certificate that ${clientAuth} does not verify: anyone can make a certificate with an allowed SAN; use RequireAndVerifyClientCert`);
    }
  }

  const versionOf = (k: 'min_version' | 'max_version', v: string): string | undefined => {
    if (GO_TLS_VERSIONS.has(v)) return v;
    w.report(field(k), `unknown TLS version "${v}" (one of: ${[...GO_TLS_VERSIONS.keys()].join(', ')})`);
    return undefined;
  };
  const min = versionOf('min_version', minVersion);
  const max = versionOf('max_version', maxVersion);
  if (min && max && min > max) w.report(field('min_version'), `${min} is above max_version ${max}: no connection could be made`);
  if (min === 'TLS10' || min === 'TLS11') {
    ctx.warnings.push(`min_version ${min} is accepted, but Node's OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level: clients still need TLS 1.2`);
  }

  for (const { value, field: cf } of ciphers) {
    const openssl = GO_CIPHER_SUITES.get(value);
    if (openssl === undefined) {
      w.report(cf, GO_INSECURE_CIPHER_SUITES.has(value) ? `cipher "${value}" is one of Go's insecure suites, which the toolkit does not accept` : `unknown cipher "${value}" (the Go names of tls.CipherSuites(); see docs/web-security.md)`);
    } else if (openssl && !tls.getCiphers().includes(openssl.toLowerCase())) {
      w.report(cf, `cipher "${value}" (OpenSSL ${openssl}) is not available in this Node's OpenSSL`);
    }
  }
  const cipherNames = ciphers.map((c) => c.value);
  const tls12Ciphers = cipherNames.filter((c) => GO_CIPHER_SUITES.get(c));
  // Judged only on a list of known names: with a typo in it, these would only repeat that problem.
  if (cipherNames.length && cipherNames.every((c) => GO_CIPHER_SUITES.has(c)) && min && min < 'TLS13') {
    if (ctx.http2 && !cipherNames.some((c) => HTTP2_REQUIRED_CIPHER_SUITES.includes(c))) {
      w.report(
        field('cipher_suites'),
        `lacks ${HTTP2_REQUIRED_CIPHER_SUITES.join(' and ')}, which HTTP/2 requires: the toolkit refuses to start with this list while http_server_config.http2 is true (the default); add one of them or set http2: false`,
      );
    }
    if (!tls12Ciphers.length && max && max < 'TLS13') w.report(field('cipher_suites'), 'lists only TLS 1.3 suites, which cannot be chosen, while max_version is below TLS13: no connection could be made');
  }
  if (cipherNames.some((c) => GO_CIPHER_SUITES.get(c) === null)) {
    ctx.warnings.push('cipher_suites lists TLS 1.3 suites: like Go, Node always enables all three TLS 1.3 suites and these entries change nothing');
  }
  for (const { value, field: cf } of curves) {
    if (!GO_CURVES.has(value)) w.report(cf, `unknown curve "${value}" (one of: ${[...GO_CURVES.keys()].join(', ')})`);
  }

  const enabled = [cert, certFile, key, keyFile, clientCa, clientCaFile, clientAuthText].some((v) => v !== undefined);
  if (!enabled) {
    if (fields.size) ctx.warnings.push('tls_server_config names no certificate or key: the server speaks plain HTTP and the other TLS settings have no effect');
    return undefined;
  }

  const pem = (inline: string | undefined, inlineKey: string, fileValue: string | undefined, fileKey: string, required: boolean): { text: string; field: Field } | undefined => {
    if (inline !== undefined && fileValue !== undefined) {
      w.report(field(inlineKey), `give either ${inlineKey} or ${fileKey}, not both`);
      return undefined;
    }
    if (fileValue !== undefined) {
      const p = path.isAbsolute(fileValue) ? fileValue : path.join(ctx.dir, fileValue);
      try {
        return { text: ctx.reader.read(p).toString('utf8'), field: field(fileKey) };
      } catch (err) {
        w.report(field(fileKey), `cannot read ${p}: ${errnoText(err)}`);
        return undefined;
      }
    }
    if (inline !== undefined) return { text: inline, field: field(inlineKey) };
    if (required) w.report({ path: f.path, key: f.key }, `missing one of ${inlineKey} or ${fileKey}`);
    return undefined;
  };
  const certPem = pem(cert, 'cert', certFile, 'cert_file', true);
  const keyPem = pem(key, 'key', keyFile, 'key_file', true);
  const caPem = pem(clientCa, 'client_ca', clientCaFile, 'client_ca_file', false);

  let x509: crypto.X509Certificate | undefined;
  if (certPem) {
    const c = firstCertificate(certPem.text);
    if (typeof c === 'string') w.report(certPem.field, c);
    else x509 = c;
  }
  let keyObject: crypto.KeyObject | undefined;
  if (keyPem) {
    const k = privateKey(keyPem.text);
    if (typeof k === 'string') w.report(keyPem.field, k);
    else keyObject = k;
  }
  const mismatch = x509 && keyObject && keyMismatch(x509, keyObject);
  if (mismatch) w.report(keyPem!.field, mismatch);
  if (caPem && !pemCertificates(caPem.text).length) w.report(caPem.field, 'contains no PEM certificate');

  if (clientAuth === undefined) return undefined;
  if ((clientCa !== undefined || clientCaFile !== undefined) && clientAuth === 'NoClientCert') {
    w.report(field(clientCaFile !== undefined ? 'client_ca_file' : 'client_ca'), 'a client CA is configured but client_auth_type is NoClientCert (the toolkit refuses this too): set client_auth_type, e.g. RequireAndVerifyClientCert');
  }
  if ((clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert') && clientCa === undefined && clientCaFile === undefined) {
    // Go falls back to the system's roots here, Node to its bundled Mozilla roots: the same intent, so accepted, but rarely meant.
    ctx.warnings.push(`${clientAuth} without client_ca_file or client_ca trusts client certificates from every public CA Node knows`);
  }

  if (w.problems.length > before || !x509 || !keyObject || !min || !max) return undefined;

  if (Date.parse(x509.validTo) < Date.now()) ctx.warnings.push(`the server certificate expired on ${new Date(x509.validTo).toISOString()}`);
  else if (Date.parse(x509.validFrom) > Date.now()) ctx.warnings.push(`the server certificate is not valid before ${new Date(x509.validFrom).toISOString()}`);

  const out: TlsServerConfig = {
    cert: certPem!.text,
    key: new Secret(keyPem!.text),
    clientCa: caPem?.text,
    clientAuth,
    clientAllowedSans: sans?.map((s) => s.value),
    minVersion: min,
    maxVersion: max,
    cipherSuites: cipherNames,
    preferServerCipherSuites: preferServer,
    curvePreferences: curves.map((c) => c.value),
    certFingerprint256: x509.fingerprint256,
    certSubject: x509.subject.replace(/\n/g, ', '),
    certNotAfter: new Date(x509.validTo),
  };
  try {
    tls.createSecureContext(nodeTlsOptions(out).context);
  } catch (err) {
    w.report({ path: f.path, key: f.key }, `Node cannot use these TLS settings: ${(err as Error).message}`);
    return undefined;
  }
  return out;
}

function parseUsers(w: Walker, f: Field | undefined, warnings: string[]): ReadonlyMap<string, Secret> {
  const users = new Map<string, Secret>();
  if (!f) return users;
  for (const [name, field] of w.mapping(f, undefined, 'user names to bcrypt hashes') ?? []) {
    const hash = w.string(field);
    if (hash === undefined) {
      w.report(field, `user "${name}" has no password hash`);
      continue;
    }
    const problem = bcryptHashProblem(hash);
    if (problem) {
      w.report(field, `the password hash of user "${name}" ${problem}`);
      continue;
    }
    if (name.includes(':')) warnings.push(`basic_auth_users: user "${name}" contains ":", which basic auth cannot transmit in a user name: that user can never log in`);
    users.set(name, new Secret(hash));
  }
  return users;
}

function parseRateLimit(w: Walker, f: Field | undefined, warnings: string[]): WebConfig['rateLimit'] {
  if (!f) return undefined;
  const fields = w.mapping(f, ['interval', 'burst'], 'interval, burst');
  if (!fields) return undefined;
  const intervalField = fields.get('interval');
  let intervalNs = 0;
  if (intervalField) {
    const node = w.resolve(intervalField.value);
    if (isScalar(node) && typeof node.value === 'number' && Number.isSafeInteger(node.value)) {
      // A bare number is nanoseconds in the toolkit (Go's time.Duration): kept, odd as it is, so files mean the same.
      intervalNs = node.value;
    } else if (!isNull(node)) {
      const text = w.string(intervalField);
      if (text !== undefined) {
        const ns = parseGoDuration(text);
        if (ns === undefined) w.report(intervalField, `invalid duration "${text}" (a Go duration such as 500ms, 1s or 1m30s; 0 turns the limit off)`);
        else intervalNs = ns;
      }
    }
    if (intervalNs < 0) w.report(intervalField, 'must not be negative (0 turns the limit off)');
  }
  const burst = w.integer(fields.get('burst')) ?? 0;
  if (burst < 0) w.report(fields.get('burst')!, 'must not be negative');
  if (intervalNs <= 0 || burst < 0) return undefined;
  if (burst === 0) warnings.push('rate_limit has an interval but burst 0: every request is refused with 429, as the toolkit does');
  return { intervalMs: intervalNs / 1e6, burst };
}

const GO_DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** Go's time.ParseDuration, in nanoseconds. */
function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  const m = /^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!m) return undefined;
  let total = 0;
  for (const [, num, unit] of m[2].matchAll(GO_DURATION_PART)) total += Number(num) * GO_DURATION_UNITS[unit];
  return m[1] === '-' ? -total : total;
}

function sortByLine(problems: string[]): void {
  const lineOf = (p: string) => Number(/\(line (\d+)\)/.exec(p)?.[1] ?? 0);
  problems.sort((a, b) => lineOf(a) - lineOf(b));
}

function isNull(node: YNode): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

/** A scalar as the toolkit's go-yaml reads it into a string field: its text as written, even for numbers and booleans. */
function scalarText(node: { value: unknown; source?: string }): string {
  if (typeof node.value === 'string') return node.value;
  return node.source ?? String(node.value);
}

function formatPath(p: PathPart[]): string {
  if (!p.length) return '(top level)';
  return p.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const reasons: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' };
  return e.code ? `${e.code}${reasons[e.code] ? ` (${reasons[e.code]})` : ''}` : e.message;
}

function formatMs(ms: number): string {
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
