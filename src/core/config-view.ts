// The loaded configuration as /config shows it (as Prometheus and blackbox_exporter show theirs): YAML with every
// secret masked. Two nets, as in src/util/redact.ts: values under a key that names a secret are replaced whatever
// they hold (a secret from the environment that was never registered is still hidden), and the text is then redacted
// for every registered secret in any form (a key, token or password that ended up under an ordinary key).
import { stringify } from 'yaml';
import { redact } from '../util/redact';

/** What Prometheus prints for a secret in its /config. */
const MASK = '<secret>';

/**
 * Keys whose values are secrets: the static credentials (access_key_id, access_key_secret, security_token,
 * secret_id, secret_key, token), a subscriber's keys, passwords, external_id (a confused-deputy guard, not to be
 * shown) and any future `*_secret` / `*_key` / `*_token` / `*_password`. `*_file` keys name files and stay: their
 * contents are read elsewhere and registered as secrets.
 */
const SECRET_KEY = /(^|_)(secret|token|password)$|_key$|_key_id$|^secret_id$|^external_id$/;

function masked(value: unknown, key: string | undefined): unknown {
  if (key !== undefined && SECRET_KEY.test(key) && value !== null && typeof value !== 'object') return MASK;
  if (key === 'proxy_url' && typeof value === 'string') return withoutPassword(value);
  if (Array.isArray(value)) return value.map((v) => masked(v, undefined));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v, k)]));
  return value;
}

/** A proxy URL's password (user:password@host) is a secret; the user and host are not. */
function withoutPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, `$1:${MASK}@`);
}

/** The configuration document (ExporterConfig.document) as YAML, every secret masked. */
export function maskedConfigYaml(document: unknown): string {
  return redact(stringify(masked(document, undefined), { lineWidth: 0 }));
}
