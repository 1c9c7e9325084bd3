import { describe, expect, test } from 'vitest';
import { redact, registerSecret } from '../../src/redact';
import { normaliseAliyunError } from '../../src/cloud/aliyun';

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
