// Reading PEM certificates and private keys for the TLS settings (the web config's server certificate, Redis' client
// certificate): each answer is the parsed object or the reason it is not usable, phrased for a config problem.
import crypto from 'node:crypto';

/** The PEM certificate blocks of a text (a CA bundle holds several); anything else in it is ignored. */
export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The first certificate of a PEM text, or why there is none. */
export function firstCertificate(text: string): crypto.X509Certificate | string {
  const blocks = pemCertificates(text);
  if (!blocks.length) return 'contains no PEM certificate';
  try {
    return new crypto.X509Certificate(blocks[0]);
  } catch (err) {
    return `the first certificate cannot be parsed: ${(err as Error).message}`;
  }
}

/** A private key, or why not. OpenSSL's reason is left out on purpose: nothing of a key's content goes into a message. */
export function privateKey(text: string | Buffer): crypto.KeyObject | string {
  try {
    return crypto.createPrivateKey(text);
  } catch {
    return 'is not an unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)';
  }
}

/** Why `key` is not the private key of `cert`, if it is not. */
export function keyMismatch(cert: crypto.X509Certificate, key: crypto.KeyObject): string | undefined {
  return cert.checkPrivateKey(key) ? undefined : `does not belong to the certificate (${cert.subject.replace(/\n/g, ', ')})`;
}
