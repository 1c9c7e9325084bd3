// The status page's "last minute" per (account, API): a call counts for 60 whole seconds, the current one included,
// then drops out; totals stay; pairs are apart; a forgotten pair starts again from zero.
import { expect, test } from 'vitest';
import { ApiActivity } from '../../src/cloud/api-activity';

test('calls, throttled answers and retries count for the last 60 seconds, then only in the totals', () => {
  let now = 1_000_000_500;
  const a = new ApiActivity(() => now);
  for (let i = 0; i < 5; i++) a.note('acct', 'Api', 'calls');
  a.note('acct', 'Api', 'throttled');
  now += 30_000;
  a.note('acct', 'Api', 'calls');
  a.note('acct', 'Api', 'retries');
  a.note('other', 'Api', 'calls');
  expect(a.counts('acct', 'Api')).toEqual({ lastMinute: { calls: 6, throttled: 1, retries: 1 }, total: { calls: 6, throttled: 1, retries: 1 } });
  // 59 s after the first calls' second they still count; in the 60th they are gone.
  now += 29_000;
  expect(a.counts('acct', 'Api').lastMinute.calls).toBe(6);
  now += 1000;
  expect(a.counts('acct', 'Api').lastMinute).toEqual({ calls: 1, throttled: 0, retries: 1 });
  // A long silence empties every bucket, however long.
  now += 3_600_000;
  expect(a.counts('acct', 'Api')).toEqual({ lastMinute: { calls: 0, throttled: 0, retries: 0 }, total: { calls: 6, throttled: 1, retries: 1 } });
  a.note('acct', 'Api', 'calls');
  expect(a.counts('acct', 'Api').lastMinute.calls).toBe(1);
  expect(a.counts('other', 'Api').total.calls).toBe(1);
  a.forget('acct', 'Api');
  expect(a.counts('acct', 'Api').total.calls).toBe(0);
});
