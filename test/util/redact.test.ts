import { describe, expect, test } from 'vitest';
import { redact, registerSecret, registeredSecrets } from '../../src/util/redact';
import { normaliseAliyunError } from '../../src/cloud/providers/aliyun';

describe('redact', () => {
  test('removes the signed URL pop-core appends to its error messages', () => {
    const msg =
      'Specified signature is not matched with our calculation., URL: http://127.0.0.1:1/?AccessKeyId=LTAIabc&SecurityToken=STS.secret-token&Signature=abc%3D&Action=X';
    const out = redact(msg);
    expect(out).toBe('Specified signature is not matched with our calculation.');
  });

  test('masks credential parameters wherever they appear', () => {
    const out = redact('GET /?Action=X&AccessKeyId=LTAIabc&SecurityToken=STS.tok&Signature=zz');
    expect(out).not.toMatch(/LTAIabc|STS\.tok|=zz/);
    expect(out).toContain('Action=X');
  });

  test('removes registered secrets verbatim and URL-encoded', () => {
    registerSecret('s3cr3t/with+chars');
    expect(redact('value s3cr3t/with+chars and s3cr3t%2Fwith%2Bchars')).toBe('value REDACTED and REDACTED');
  });

  test('a pop-core error becomes a CloudError whose message has no URL', () => {
    const err = Object.assign(new Error('Throttled, URL: http://h/?SecurityToken=STS.leak'), {
      code: 'Throttling.User',
      data: { RequestId: 'r-1', Code: 'Throttling.User', Message: 'Throttled' },
      entry: { response: { statusCode: 400 } },
    });
    const ce = normaliseAliyunError('SendMessage', err);
    expect(ce.code).toBe('Throttling.User');
    expect(ce.throttled).toBe(true);
    expect(ce.retryable).toBe(true);
    expect(ce.httpStatus).toBe(400);
    expect(ce.requestId).toBe('r-1');
    expect(ce.message).not.toContain('STS.leak');
  });

  test('error codes from a hostile server are made label-safe', () => {
    const err = Object.assign(new Error('x'), { code: 'Bad"Code\n{x}' + 'A'.repeat(100), data: {} });
    const ce = normaliseAliyunError('X', err);
    expect(ce.code).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  });
});

describe('redact: every encoding a registered secret can take (hardening defect 2)', () => {
  // An STS token as Alibaba issues them: long, with '+', '/' and '=' that URL encoding changes.
  const token = 'CAISzgJ1q6Ft5B2yfSjIr5bNKs/fj+1U2LevbUPzjUQlTcdrhLbuhzz2IHhMf3dsAe0csvQ2m2hZ7/0Slr0=';
  registerSecret(token);
  const once = encodeURIComponent(token);
  const twice = encodeURIComponent(once);

  test.each([
    ['raw', token],
    ['URL-encoded once', once],
    ['URL-encoded twice (a string-to-sign echoed by the cloud)', twice],
    ['URL-encoded with lower-case hex', once.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
    ['JSON-escaped', JSON.stringify({ t: token }).slice(6, -2)],
    ['base64', Buffer.from(token).toString('base64')],
    ['base64 at byte offset 1 of a longer text', Buffer.from(`x${token}`).toString('base64')],
    ['base64 at byte offset 2 of a longer text', Buffer.from(`xy${token}`).toString('base64')],
    ['cut to its first 12 characters', token.slice(0, 12)],
    ['cut to 20 characters, URL-encoded twice', encodeURIComponent(encodeURIComponent(token.slice(0, 20)))],
  ])('%s', (_name, form) => {
    const line = `SignatureDoesNotMatch: server string to sign is: POST&%2F&AccessKeyId%3Dabc%26SecurityToken%3D${form}%26Version...`;
    const out = redact(line);
    // No 12-character run of the secret in any form survives.
    for (const f of [token, once, twice, Buffer.from(token).toString('base64')]) {
      for (let i = 0; i + 12 <= f.length; i += 6) expect(out).not.toContain(f.slice(i, i + 12));
    }
    expect(out).toContain('REDACTED');
  });

  test('a prefix shorter than 12 characters and unrelated text are left alone', () => {
    expect(redact(`id ${token.slice(0, 8)} and plain words`)).toBe(`id ${token.slice(0, 8)} and plain words`);
  });
});

describe('redact: rotating credentials', () => {
  test('an expired secret is forgotten an hour after its expiry; a live one stays masked', () => {
    const old = 'STS.expired-long-ago-0123456789abcdef';
    const live = 'STS.still-valid-token-0123456789abcdef';
    registerSecret(old, Date.now() - 2 * 3_600_000);
    const before = registeredSecrets();
    registerSecret(live, Date.now() + 3_600_000);
    expect(registeredSecrets()).toBe(before);
    expect(redact(`old ${old} live ${live}`)).toBe(`old ${old} live REDACTED`);
  });

  test('hundreds of registered secrets still mask exactly (one lookup per character, whatever their number)', () => {
    const tokens = Array.from({ length: 300 }, (_, i) => Buffer.from(`token-${i}-${'x'.repeat(200)}-${i}`).toString('base64'));
    for (const t of tokens) registerSecret(t, Date.now() + 3_600_000);
    expect(redact(`a ${tokens[123]} b ${encodeURIComponent(tokens[7].slice(0, 30))} c`)).toBe('a REDACTED b REDACTED c');
  });
});
