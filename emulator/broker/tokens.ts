// ApsaraMQ for MQTT tokens as the emulator issues (ApplyToken) and its broker checks them (Token sign-in, the
// $SYS/uploadToken update, subscribe and publish permissions). Facts from the product's documentation:
// - ApplyToken takes Resources (topics, comma-separated, sorted, at most 100, MQTT wildcards + and # allowed), Actions
//   (R, W or R,W), ExpireTime (ms epoch; at least 60 s ahead; beyond 30 days the call succeeds but the token lives 30
//   days) and InstanceId, and answers {RequestId, Token}.
// - A client holds at most one token per type: R (read: subscribe), W (write: publish), RW (both); the password is
//   the pairs `<type>|<token>` joined by `|`, in any order, and every token in it must be valid.
// - Invalid-token notices carry a code: 1 forged (unparsable), 2 expired, 3 revoked, 4 resources and token do not
//   match, 5 permission type and token do not match, 8 bad signature, -1 account permission not valid.
// What the documentation does not say, the emulator decides (emulator/README.md): a token is bound to the AccessKey
// ID that applied for it, and is its own credential afterwards (it stays valid when that key's STS session expires).
import { randomBytes } from 'node:crypto';

export type TokenType = 'R' | 'W' | 'RW';

export interface IssuedToken {
  token: string;
  instanceId: string;
  /** The AccessKey ID that signed ApplyToken: the one a client must name in `Token|<AccessKeyId>|<InstanceId>`. */
  accessKeyId: string;
  resources: readonly string[];
  type: TokenType;
  /** ms epoch. */
  expiresAt: number;
  revoked: boolean;
}

/** Codes of `$SYS/tokenInvalidNotice`. */
export const INVALID_TOKEN = { forged: 1, expired: 2, revoked: 3, resourceMismatch: 4, typeMismatch: 5, account: -1 } as const;

export const MAX_TOKEN_RESOURCES = 100;
/** ApplyToken's documented bounds of a token's validity. */
export const MIN_TOKEN_VALIDITY_MS = 60_000;
export const MAX_TOKEN_VALIDITY_MS = 30 * 86_400_000;
/** How long an expired token is still recognised, so that its use is answered "expired", not "forged". */
const RETAIN_EXPIRED_MS = 60 * 60_000;

/** The token type Actions stands for: `R`, `W`, or both in either order. */
export function tokenTypeOf(actions: string): TokenType | undefined {
  const parts = actions.split(',').map((a) => a.trim());
  const set = new Set(parts);
  if (set.size !== parts.length || ![...set].every((a) => a === 'R' || a === 'W')) return undefined;
  return set.size === 2 ? 'RW' : (parts[0] as 'R' | 'W');
}

/** Whether a topic filter (a subscription, or a topic published to) lies within a resource with MQTT wildcards. */
export function resourceCovers(resource: string, filter: string): boolean {
  const r = resource.split('/');
  const f = filter.split('/');
  for (let i = 0; i < r.length; i++) {
    if (r[i] === '#') return true;
    if (i >= f.length) return false;
    if (r[i] === '+') {
      if (f[i] === '#') return false;
    } else if (r[i] !== f[i]) return false;
  }
  return r.length === f.length;
}

/** A resource as a topic filter: levels separated by `/`, none empty, `+` and `#` only as whole levels, `#` last. */
export function isValidResource(resource: string): boolean {
  const levels = resource.split('/');
  return levels.every((l, i) => l !== '' && (l === '+' || l === '#' || !/[+#]/.test(l)) && (l !== '#' || i === levels.length - 1));
}

/** The pairs of a Token-mode password, `R|<t1>` or `R|<t1>|W|<t2>`; undefined when malformed or a type repeats. */
export function parseTokenPassword(password: string): Array<{ type: TokenType; token: string }> | undefined {
  const parts = password.split('|');
  if (parts.length === 0 || parts.length % 2 !== 0) return undefined;
  const pairs: Array<{ type: TokenType; token: string }> = [];
  for (let i = 0; i < parts.length; i += 2) {
    const type = parts[i];
    const token = parts[i + 1] as string;
    if ((type !== 'R' && type !== 'W' && type !== 'RW') || token === '' || pairs.some((p) => p.type === type)) return undefined;
    pairs.push({ type, token });
  }
  return pairs;
}

export class TokenStore {
  private readonly byToken = new Map<string, IssuedToken>();
  private issuedSincePrune = 0;

  constructor(private readonly now: () => number) {}

  issue(t: Omit<IssuedToken, 'token' | 'revoked'>): IssuedToken {
    // Shaped like the documentation's sample: a long Base64 string (Base64 holds no `|`, the password's separator).
    const issued: IssuedToken = { ...t, token: randomBytes(180).toString('base64'), revoked: false };
    this.byToken.set(issued.token, issued);
    if (++this.issuedSincePrune >= 256) this.prune();
    return issued;
  }

  lookup(token: string): IssuedToken | undefined {
    return this.byToken.get(token);
  }

  /** Every token issued and not yet forgotten (tests: what a client could have been handed). */
  all(): IssuedToken[] {
    return [...this.byToken.values()];
  }

  /** Revokes every token of an instance (RevokeToken for each); returns how many. */
  revokeInstance(instanceId: string): number {
    let n = 0;
    for (const t of this.byToken.values()) {
      if (t.instanceId === instanceId && !t.revoked) {
        t.revoked = true;
        n++;
      }
    }
    return n;
  }

  /**
   * Why `token`, presented as `type` by a client of `instanceId` signed in as `accessKeyId`, may not be used: an
   * invalid-token notice code, or undefined when it may.
   */
  problem(token: string, type: TokenType, instanceId: string, accessKeyId: string): number | undefined {
    const t = this.byToken.get(token);
    if (t === undefined) return INVALID_TOKEN.forged;
    if (t.instanceId !== instanceId || t.accessKeyId !== accessKeyId) return INVALID_TOKEN.account;
    const lapsed = this.lapsed(t);
    if (lapsed !== undefined) return lapsed;
    if (t.type !== type) return INVALID_TOKEN.typeMismatch;
    return undefined;
  }

  /** Why a token issued as it should have been is no longer good (revoked, expired); undefined while it is. */
  lapsed(t: IssuedToken): number | undefined {
    if (t.revoked) return INVALID_TOKEN.revoked;
    if (t.expiresAt <= this.now()) return INVALID_TOKEN.expired;
    return undefined;
  }

  private prune(): void {
    this.issuedSincePrune = 0;
    const cutoff = this.now() - RETAIN_EXPIRED_MS;
    for (const [k, t] of this.byToken) if (t.expiresAt < cutoff) this.byToken.delete(k);
  }
}
