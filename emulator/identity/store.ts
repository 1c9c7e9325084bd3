// Temporary credentials the emulator's identity endpoints have issued, looked up by key ID when a call is verified.
import { randomBytes } from 'node:crypto';

type IdentityProvider = 'aliyun' | 'tencentcloud';

export interface IssuedCredential {
  provider: IdentityProvider;
  /** AccessKeyId (`STS.…`) or SecretId (`AKID…`). */
  keyId: string;
  secret: string;
  token: string;
  /** ms epoch, whole seconds: the answers state it to the second, so the client and the store agree exactly. */
  expiresAt: number;
  /** Scenario account the gateways treat calls with this credential as (rate windows, instance ownership). */
  account: string;
  /** The role ARN, or the instance role name, it was issued for. */
  role: string;
}

/** What a gateway needs to verify a call signed with an issued credential. */
export interface IssuedLookup {
  secret: string;
  token: string;
  expiresAt: number;
  account: string;
}

interface IssueRequest {
  account: string;
  role: string;
  ttlMs: number;
}

/** How long an expired credential is still recognised, so that its use is answered "expired", not "unknown key". */
const RETAIN_EXPIRED_MS = 60 * 60_000;

function randomText(bytes: number, encoding: 'hex' | 'base64url'): string {
  return randomBytes(bytes).toString(encoding);
}

export class IssuedCredentialStore {
  private readonly byKey = new Map<string, IssuedCredential>();
  private issuedSincePrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  issueAliyun(req: IssueRequest): IssuedCredential {
    // Shapes as the real STS issues them: an `STS.` key ID, a 44-character secret and a long `CAIS…` token.
    return this.add({ provider: 'aliyun', keyId: `STS.NT${randomText(12, 'base64url')}`, secret: randomText(33, 'base64url'), token: `CAIS${randomText(150, 'base64url')}`, ...this.common(req) });
  }

  issueTencent(req: IssueRequest): IssuedCredential {
    return this.add({ provider: 'tencentcloud', keyId: `AKID${randomText(24, 'base64url').replace(/[-_]/g, 'x')}`, secret: randomText(24, 'base64url'), token: randomText(150, 'base64url'), ...this.common(req) });
  }

  lookupAliyun(accessKeyId: string): IssuedLookup | undefined {
    return this.lookup('aliyun', accessKeyId);
  }

  lookupTencent(secretId: string): IssuedLookup | undefined {
    return this.lookup('tencentcloud', secretId);
  }

  /** Credentials issued and not yet forgotten (tests: what a client could have been handed). */
  all(): IssuedCredential[] {
    return [...this.byKey.values()];
  }

  private common(req: IssueRequest): Pick<IssuedCredential, 'expiresAt' | 'account' | 'role'> {
    return { expiresAt: Math.floor((this.now() + req.ttlMs) / 1000) * 1000, account: req.account, role: req.role };
  }

  private lookup(provider: IdentityProvider, keyId: string): IssuedLookup | undefined {
    const c = this.byKey.get(keyId);
    if (c === undefined || c.provider !== provider) return undefined;
    return { secret: c.secret, token: c.token, expiresAt: c.expiresAt, account: c.account };
  }

  private add(c: IssuedCredential): IssuedCredential {
    this.byKey.set(c.keyId, c);
    if (++this.issuedSincePrune >= 256) this.prune();
    return c;
  }

  private prune(): void {
    this.issuedSincePrune = 0;
    const cutoff = this.now() - RETAIN_EXPIRED_MS;
    for (const [k, c] of this.byKey) if (c.expiresAt < cutoff) this.byKey.delete(k);
  }
}
