// Scrubs credentials from any text before it can reach a log, a metric, an error message or an HTTP response.
// pop-core puts the whole signed URL (AccessKeyId, SecurityToken, Signature) into its error messages.

const SECRET_PARAMS = /([?&]|\b)(AccessKeyId|SecurityToken|Signature|SignatureNonce|AccessKeySecret|SecretId|SecretKey|Token|X-TC-Token)=([^&\s"',]*)/gi;
const SIGNED_URL_SUFFIX = /,?\s*URL:\s*\S+/g;
const TC3_AUTH = /(TC3-HMAC-SHA256\s+Credential=)[^\s,]+/g;
const TC3_SIG = /(Signature=)[0-9a-f]{16,}/gi;

const registered = new Set<string>();

/** Secrets loaded from configuration are registered here so that they are removed verbatim wherever they appear. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) registered.add(value);
}

export function forgetSecrets(): void {
  registered.clear();
}

export function redact(text: string): string {
  let out = String(text);
  out = out.replace(SIGNED_URL_SUFFIX, '');
  out = out.replace(SECRET_PARAMS, (_m, sep: string, key: string) => `${sep}${key}=REDACTED`);
  out = out.replace(TC3_AUTH, '$1REDACTED');
  out = out.replace(TC3_SIG, '$1REDACTED');
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join('REDACTED');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret && out.includes(encoded)) out = out.split(encoded).join('REDACTED');
  }
  return out;
}
