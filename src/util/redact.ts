// Scrubs credentials from any text before it can reach a log, a metric, an error message or an HTTP response.
//
// Two nets. Known parameter shapes (AccessKeyId=..., SecurityToken=..., a TC3 Authorization header, pop-core's
// ", URL: ..." suffix) are masked whatever their value. And every secret the configuration loaded is masked in each
// form it can take on its way into a message: raw, URL-encoded once or twice (a cloud that echoes its string-to-sign
// encodes the already-encoded query again), with pop-core's RFC 3986 encoding, JSON-escaped, base64-encoded at any
// byte alignment, and cut short: any run of at least MIN_PREFIX leading characters of one of those forms counts.

const SECRET_PARAMS = /([?&]|\b)(AccessKeyId|SecurityToken|Signature|SignatureNonce|AccessKeySecret|SecretId|SecretKey|Token|X-TC-Token)=([^&\s"',]*)/gi;
const SIGNED_URL_SUFFIX = /,?\s*URL:\s*\S+/g;
const TC3_AUTH = /(TC3-HMAC-SHA256\s+Credential=)[^\s,]+/g;
const TC3_SIG = /(Signature=)[0-9a-f]{16,}/gi;

/** A secret shorter than this is masked only whole; its forms are masked from their first MIN_PREFIX characters on. */
const MIN_PREFIX = 12;
/** Secrets shorter than this are not registered: masking every "abc" would shred ordinary text. */
const MIN_SECRET = 4;
export const MASK = 'REDACTED';

/** Each form a registered secret can take. */
const forms = new Set<string>();

/** pop-core's encoding: encodeURIComponent plus ! ' ( ) * escaped. */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
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
    // Characters covering any padding byte at the start, or a partial group at the end, vary with the neighbours.
    const start = Math.ceil((pad * 4) / 3);
    const end = Math.floor(((pad + bytes.length) * 4) / 3);
    if (end - start >= MIN_PREFIX) out.push(b64.slice(start, end));
  }
  return out;
}

/** Secrets loaded from configuration are registered here so that they are removed wherever they appear. */
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < MIN_SECRET) return;
  const once = encodeURIComponent(value);
  const candidates = [value, once, encodeURIComponent(once), rfc3986(value), rfc3986(rfc3986(value)), JSON.stringify(value).slice(1, -1), Buffer.from(value, 'utf8').toString('base64').replace(/=+$/, ''), ...base64Cores(value)];
  for (const form of candidates) forms.add(form);
}

/** Escapes a form for a RegExp; percent-escapes match in either hex case. */
function pattern(form: string): string {
  const parts: string[] = [];
  for (let i = 0; i < form.length; i++) {
    const c = form[i];
    if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(form.slice(i + 1, i + 3))) {
      parts.push(`%[${form[i + 1].toUpperCase()}${form[i + 1].toLowerCase()}][${form[i + 2].toUpperCase()}${form[i + 2].toLowerCase()}]`);
      i += 2;
    } else parts.push(c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'));
  }
  return parts.join('');
}

/** A form as a pattern that also matches it cut short after MIN_PREFIX pattern units: a(b(c)?)? nesting. */
function prefixPattern(form: string): string {
  const units = pattern(form).match(/%\[[^\]]+\]\[[^\]]+\]|\\.|./g) ?? [];
  if (units.length <= MIN_PREFIX) return units.join('');
  const head = units.slice(0, MIN_PREFIX).join('');
  let tail = '';
  for (let i = units.length - 1; i >= MIN_PREFIX; i--) tail = `(?:${units[i]}${tail})?`;
  return head + tail;
}

let compiled: { size: number; patterns: RegExp[] } = { size: -1, patterns: [] };

function secretPatterns(): RegExp[] {
  if (compiled.size !== forms.size) compiled = { size: forms.size, patterns: [...forms].map((f) => new RegExp(prefixPattern(f), 'g')) };
  return compiled.patterns;
}

/**
 * Masks every stretch of `text` that some form matches. Each form matches as far as it can; the stretches of all
 * forms are merged, so a form that matches only a prefix (another encoding of the same start) never leaves the rest
 * of the secret behind.
 */
function maskSecrets(text: string): string {
  const spans: Array<[number, number]> = [];
  for (const re of secretPatterns()) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      spans.push([m.index, m.index + m[0].length]);
      if (m[0].length === 0) re.lastIndex++;
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = '';
  let at = 0;
  for (const [from, to] of spans) {
    if (to <= at) continue;
    if (from > at) out += text.slice(at, from);
    if (from >= at) out += MASK;
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
