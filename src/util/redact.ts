// Scrubs credentials from any text before it can reach a log, a metric, an error message or an HTTP response.
//
// Two nets. Known parameter shapes (AccessKeyId=..., SecurityToken=..., a TC3 Authorization header, pop-core's
// ", URL: ..." suffix) are masked whatever their value. And every secret registered here (what the configuration
// loaded, what a credential provider obtained) is masked in each form it can take on its way into a message: raw,
// URL-encoded once or twice (a cloud that echoes its string-to-sign encodes the already-encoded query again), with
// pop-core's RFC 3986 encoding, JSON-escaped, base64-encoded at any byte alignment, and cut short: any run of at
// least MIN_PREFIX leading characters of one of those forms counts.
//
// Matching costs one map lookup per character of the text, however many secrets there are: every form is indexed by
// its first MIN_PREFIX characters, a text's windows of that length are looked up, and a hit is extended as far as the
// form goes. Rotating credentials register new secrets every hour; each is forgotten a while after it expires.

const SECRET_PARAMS = /([?&]|\b)(AccessKeyId|SecurityToken|Signature|SignatureNonce|AccessKeySecret|SecretId|SecretKey|Token|X-TC-Token)=([^&\s"',]*)/gi;
const SIGNED_URL_SUFFIX = /,?\s*URL:\s*\S+/g;
const TC3_AUTH = /(TC3-HMAC-SHA256\s+Credential=)[^\s,]+/g;
const TC3_SIG = /(Signature=)[0-9a-f]{16,}/gi;

/** A secret shorter than this is masked only whole; its forms are masked from their first MIN_PREFIX characters on. */
const MIN_PREFIX = 12;
/** Secrets shorter than this are not registered: masking every "abc" would shred ordinary text. */
const MIN_SECRET = 4;
/** How long an expired secret is still masked (a late log line about a call made with it). */
const FORGET_AFTER_EXPIRY_MS = 3_600_000;
const MASK = 'REDACTED';

interface Secret {
  /** Date.now() after which it may be forgotten; Infinity for secrets from the configuration. */
  forgetAt: number;
  forms: string[];
}

const secrets = new Map<string, Secret>();
/** First MIN_PREFIX characters of a form → the forms starting so (normalised: percent-escapes upper-case). */
const byPrefix = new Map<string, Set<string>>();
/** Forms shorter than MIN_PREFIX, found by a plain search. */
const shortForms = new Set<string>();

/** pop-core's encoding: encodeURIComponent plus ! ' ( ) * escaped. */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Percent-escapes in upper case, so `%2b` and `%2B` match alike (the length does not change). */
function normalise(text: string): string {
  return text.includes('%') ? text.replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase()) : text;
}

/**
 * The stable middle of the secret's base64 text when it sits at byte offset 0, 1 or 2 of a longer base64 stream:
 * the characters that depend only on the secret's own bytes.
 */
function base64Cores(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out: string[] = [];
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    const start = Math.ceil((pad * 4) / 3);
    const end = Math.floor(((pad + bytes.length) * 4) / 3);
    if (end - start >= MIN_PREFIX) out.push(b64.slice(start, end));
  }
  return out;
}

function formsOf(value: string): string[] {
  const once = encodeURIComponent(value);
  const all = [value, once, encodeURIComponent(once), rfc3986(value), rfc3986(rfc3986(value)), JSON.stringify(value).slice(1, -1), ...base64Cores(value)];
  return [...new Set(all.map(normalise))];
}

function index(form: string, add: boolean): void {
  if (form.length < MIN_PREFIX) {
    if (add) shortForms.add(form);
    else shortForms.delete(form);
    return;
  }
  const key = form.slice(0, MIN_PREFIX);
  let set = byPrefix.get(key);
  if (add) {
    if (!set) byPrefix.set(key, (set = new Set()));
    set.add(form);
  } else if (set) {
    set.delete(form);
    if (set.size === 0) byPrefix.delete(key);
  }
}

/**
 * Registers a secret so that it is masked wherever it appears. `expiresAt` (Date.now() ms) for short-lived ones
 * (STS tokens): they are forgotten an hour after, so a process that rotates credentials for months stays fast.
 */
export function registerSecret(value: string | undefined, expiresAt?: number): void {
  if (!value || value.length < MIN_SECRET) return;
  forgetExpired();
  const forgetAt = expiresAt === undefined ? Infinity : expiresAt + FORGET_AFTER_EXPIRY_MS;
  const known = secrets.get(value);
  if (known) {
    known.forgetAt = Math.max(known.forgetAt, forgetAt);
    return;
  }
  const secret: Secret = { forgetAt, forms: formsOf(value) };
  secrets.set(value, secret);
  for (const f of secret.forms) index(f, true);
}

function forgetExpired(): void {
  const now = Date.now();
  for (const [value, s] of secrets) {
    if (s.forgetAt > now) continue;
    secrets.delete(value);
    // A form another secret shares stays indexed for it.
    for (const f of s.forms) if (![...secrets.values()].some((o) => o.forms.includes(f))) index(f, false);
  }
}

/** How many secrets are registered now (tests of the forgetting). */
export function registeredSecrets(): number {
  return secrets.size;
}

/** Masks every stretch of `text` that a registered form matches (as far as it matches), spans merged. */
function maskSecrets(text: string): string {
  if (secrets.size === 0) return text;
  const norm = normalise(text);
  const spans: Array<[number, number]> = [];
  for (let i = 0; i + MIN_PREFIX <= norm.length; i++) {
    const forms = byPrefix.get(norm.slice(i, i + MIN_PREFIX));
    if (!forms) continue;
    let longest = 0;
    for (const form of forms) {
      let j = MIN_PREFIX;
      while (j < form.length && i + j < norm.length && norm.charCodeAt(i + j) === form.charCodeAt(j)) j++;
      if (j > longest) longest = j;
    }
    spans.push([i, i + longest]);
  }
  for (const form of shortForms) for (let at = norm.indexOf(form); at >= 0; at = norm.indexOf(form, at + 1)) spans.push([at, at + form.length]);
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = '';
  let at = 0;
  for (const [from, to] of spans) {
    if (to <= at) continue;
    if (from >= at) out += text.slice(at, from) + MASK;
    at = Math.max(at, to);
  }
  return out + text.slice(at);
}

export function redact(text: string): string {
  let out = String(text);
  out = out.replace(SIGNED_URL_SUFFIX, '');
  out = out.replace(SECRET_PARAMS, (_m, sep: string, key: string) => `${sep}${key}=${MASK}`);
  out = out.replace(TC3_AUTH, `$1${MASK}`);
  out = out.replace(TC3_SIG, `$1${MASK}`);
  return maskSecrets(out);
}
