// Reads the claims of an OIDC token (a JWT) as STS does before trusting it; the emulator checks shape and claims, not the issuer's signature.

interface OidcClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  iat?: number;
}

export type OidcTokenProblem = 'empty' | 'format' | 'content' | 'expired' | 'issuer' | 'audience';
type OidcCheck = { ok: true; claims: OidcClaims } | { ok: false; problem: OidcTokenProblem };

interface OidcExpectations {
  /** The provider's issuer URL; unchecked when undefined. */
  issuer?: string;
  /** Accepted audiences (the provider's client IDs); unchecked when undefined or empty. */
  audiences?: readonly string[];
}

export function checkOidcToken(token: string, nowMs: number, expect: OidcExpectations): OidcCheck {
  const t = token.trim();
  if (t === '') return { ok: false, problem: 'empty' };
  const parts = t.split('.');
  if (parts.length !== 3) return { ok: false, problem: 'format' };
  let claims: OidcClaims;
  try {
    claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as OidcClaims;
  } catch {
    return { ok: false, problem: 'content' };
  }
  if (claims === null || typeof claims !== 'object' || typeof claims.exp !== 'number') return { ok: false, problem: 'content' };
  if (claims.exp * 1000 <= nowMs) return { ok: false, problem: 'expired' };
  if (expect.issuer !== undefined && claims.iss !== expect.issuer) return { ok: false, problem: 'issuer' };
  if (expect.audiences && expect.audiences.length > 0) {
    const aud = Array.isArray(claims.aud) ? claims.aud : claims.aud === undefined ? [] : [claims.aud];
    if (!aud.some((a) => expect.audiences!.includes(a))) return { ok: false, problem: 'audience' };
  }
  return { ok: true, claims };
}
