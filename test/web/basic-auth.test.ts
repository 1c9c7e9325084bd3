// Basic auth against bcrypt hashes: htpasswd's $2y$, unknown users, the result cache, shared computations, a free event loop.
import * as bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { BasicAuth, bcryptHashProblem, parseBasicAuthorization } from '../../src/web/basic-auth';
import { Secret } from '../../src/web/secret';
import { HTPASSWD_COST10, HTPASSWD_COST5, basicAuthHeader as basic } from './helpers';

const users = (entries: Record<string, string>) => new Map(Object.entries(entries).map(([u, h]) => [u, new Secret(h)]));

let auth: BasicAuth | undefined;
afterEach(async () => {
  await auth?.close();
  auth = undefined;
});

describe('basic auth', () => {
  it('accepts the right password of an htpasswd $2y$ hash, refuses a wrong one and an unknown user', async () => {
    auth = new BasicAuth();
    auth.setUsers(users({ alice: HTPASSWD_COST5.hash }));
    expect(await auth.check(basic('alice', HTPASSWD_COST5.password))).toBe(true);
    expect(await auth.check(basic('alice', 'wrong'))).toBe(false);
    expect(await auth.check(basic('mallory', HTPASSWD_COST5.password))).toBe(false);
    expect(await auth.check(undefined)).toBe(false);
    expect(await auth.check('Bearer abc')).toBe(false);
  });

  it('reads a $2y$ hash made from a bcryptjs $2b$ hash by swapping the prefix', async () => {
    const b = bcrypt.hashSync('swapped prefix', 4);
    expect(b.startsWith('$2b$')).toBe(true);
    auth = new BasicAuth();
    auth.setUsers(users({ bob: `$2y$${b.slice(4)}` }));
    expect(await auth.check(basic('bob', 'swapped prefix'))).toBe(true);
    expect(await auth.check(basic('bob', 'swapped prefiX'))).toBe(false);
  });

  it('checks an unknown user against a dummy hash of the configured cost, so it takes as long as a known one', async () => {
    auth = new BasicAuth();
    auth.setUsers(users({ alice: HTPASSWD_COST10.hash }));
    await auth.check(basic('warm-up', 'x'));
    const time = async (header: string) => {
      const t = performance.now();
      await auth!.check(header);
      return performance.now() - t;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[1];
    const known = median([await time(basic('alice', 'wrong 1')), await time(basic('alice', 'wrong 2')), await time(basic('alice', 'wrong 3'))]);
    const unknown = median([await time(basic('nobody', 'wrong 1')), await time(basic('nobody', 'wrong 2')), await time(basic('nobody', 'wrong 3'))]);
    expect(auth.computations).toBe(7);
    // Same cost, same work: within a factor, not the ~1000x between a bcrypt run and none.
    expect(unknown).toBeGreaterThan(known / 3);
    expect(unknown).toBeLessThan(known * 3);
  });

  it('caches results, shares one computation among concurrent checks of the same credentials, and forgets on a new user list', async () => {
    auth = new BasicAuth();
    auth.setUsers(users({ alice: HTPASSWD_COST10.hash }));
    const header = basic('alice', HTPASSWD_COST10.password);
    const results = await Promise.all(Array.from({ length: 5 }, () => auth!.check(header)));
    expect(results).toEqual([true, true, true, true, true]);
    expect(auth.computations).toBe(1);

    const t = performance.now();
    expect(await auth.check(header)).toBe(true);
    expect(performance.now() - t).toBeLessThan(5);
    expect(auth.computations).toBe(1);

    // Same password, new hash for it: the cached "true" must not be served for a hash it was not computed against.
    auth.setUsers(users({ alice: bcrypt.hashSync('new password', 4) }));
    expect(await auth.check(header)).toBe(false);
    expect(await auth.check(basic('alice', 'new password'))).toBe(true);
    expect(auth.computations).toBe(3);
  });

  it('keeps at most cacheSize results', async () => {
    auth = new BasicAuth({ cacheSize: 3 });
    auth.setUsers(users({ alice: bcrypt.hashSync('pw', 4) }));
    for (const p of ['a', 'b', 'c', 'd']) await auth.check(basic('alice', p));
    expect(auth.computations).toBe(4);
    await auth.check(basic('alice', 'd'));
    expect(auth.computations).toBe(4);
    // "a" was the least recently used of four: dropped, so computed again.
    await auth.check(basic('alice', 'a'));
    expect(auth.computations).toBe(5);
  });

  it('leaves the event loop free while bcrypt runs', async () => {
    auth = new BasicAuth();
    auth.setUsers(users({ alice: HTPASSWD_COST10.hash }));
    await auth.check(basic('alice', 'warm the worker'));
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 2);
    const t = performance.now();
    await Promise.all([auth.check(basic('alice', 'one')), auth.check(basic('alice', 'two'))]);
    const elapsed = performance.now() - t;
    clearInterval(timer);
    // Two cost-10 comparisons (~70 ms each here): in the event loop, bcryptjs would stall it for each whole one, a gap
    // of half the elapsed time. Judged relative to the elapsed time so that a busy machine does not fail it.
    expect(elapsed).toBeGreaterThan(40);
    expect(maxGap).toBeLessThan(elapsed / 4);
  });

  it('parses Authorization headers as Go does', () => {
    expect(parseBasicAuthorization(basic('a', 'b:c'))).toEqual({ user: 'a', password: 'b:c' });
    expect(parseBasicAuthorization(`bAsIc ${Buffer.from('u:p').toString('base64')}`)).toEqual({ user: 'u', password: 'p' });
    expect(parseBasicAuthorization(`Basic ${Buffer.from('no colon').toString('base64')}`)).toBeUndefined();
    expect(parseBasicAuthorization('Basic not*base64')).toBeUndefined();
  });

  it('says why a hash is not one bcrypt would read, without repeating it', () => {
    expect(bcryptHashProblem(HTPASSWD_COST10.hash)).toBeUndefined();
    expect(bcryptHashProblem('doe')).toMatch(/^is not a bcrypt hash/);
    expect(bcryptHashProblem('$2y$10$tooshort')).toBe('is not a well-formed bcrypt hash (expected $2y$NN$ followed by 53 characters)');
    expect(bcryptHashProblem(`$2y$03$${'a'.repeat(53)}`)).toBe('has bcrypt cost 3, outside the allowed range 4-31');
  });
});
