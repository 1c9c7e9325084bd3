// The scenario's `identity:` section: which STS roles, OIDC providers, instance roles and credentials URI the emulator
// serves, how long what it issues lives, and which endpoints start down. Mapped onto IdentityOptions.
import { z } from 'zod';
import type { Credentials, Scenario } from '../core/scenario';
import { ENDPOINT_MODES, IDENTITY_ENDPOINTS, type IdentityOptions } from './index';

const name = z.string().min(1);

export const identityScenarioSchema = z
  .object({
    /** Lifetime of every credential issued, in seconds (fractions allowed); default: as asked of STS, 6 h for instance roles. */
    ttl: z.number().positive().optional(),
    aliyun: z
      .object({
        roles: z
          .array(z.object({ arn: name, account: name, external_id: name.optional(), max_session: z.number().int().min(900).max(43_200).optional(), trusted_oidc_providers: z.array(name).optional() }).strict())
          .default([]),
        oidc_providers: z.array(z.object({ arn: name, issuer: name.optional(), client_ids: z.array(name).optional() }).strict()).default([]),
        ecs: z.object({ role_name: name.optional(), account: name, imds_v2_required: z.boolean().default(false) }).strict().optional(),
        credentials_uri: z.object({ path: z.string().regex(/^\/[^?#]*$/, 'a path starting with /'), account: name }).strict().optional(),
      })
      .strict()
      .optional(),
    tencent: z
      .object({
        roles: z.array(z.object({ arn: name, account: name, external_id: name.optional(), trusted_oidc_providers: z.array(name).optional() }).strict()).default([]),
        oidc_providers: z.array(z.object({ id: name, issuer: name.optional(), client_ids: z.array(name).optional() }).strict()).default([]),
        cvm: z.object({ role_name: name.optional(), account: name }).strict().optional(),
      })
      .strict()
      .optional(),
    modes: z.record(z.enum(IDENTITY_ENDPOINTS), z.enum(ENDPOINT_MODES)).default({}),
  })
  .strict();

export type IdentityScenario = z.output<typeof identityScenarioSchema>;

/** Every account an identity entry acts as must be a scenario credential of that cloud. */
export function checkIdentityScenario(sc: Scenario, ctx: z.RefinementCtx): void {
  const identity = sc.identity as IdentityScenario | undefined;
  if (!identity) return;
  const has = (provider: string, account: string) => sc.credentials.some((c) => c.provider === provider && c.account === account);
  const check = (provider: string, path: Array<string | number>, account: string) => {
    if (!has(provider, account)) ctx.addIssue({ code: 'custom', path: ['identity', ...path, 'account'], message: `no ${provider} credential has account "${account}"` });
  };
  identity.aliyun?.roles.forEach((r, i) => check('aliyun', ['aliyun', 'roles', i], r.account));
  if (identity.aliyun?.ecs) check('aliyun', ['aliyun', 'ecs'], identity.aliyun.ecs.account);
  if (identity.aliyun?.credentials_uri) check('aliyun', ['aliyun', 'credentials_uri'], identity.aliyun.credentials_uri.account);
  identity.tencent?.roles.forEach((r, i) => check('tencentcloud', ['tencent', 'roles', i], r.account));
  if (identity.tencent?.cvm) check('tencentcloud', ['tencent', 'cvm'], identity.tencent.cvm.account);
}

export function identityOptions(identity: IdentityScenario, credentials: Credentials, now: () => number): IdentityOptions {
  const a = identity.aliyun;
  const t = identity.tencent;
  return {
    now,
    ttlSeconds: identity.ttl,
    aliyunCredentials: credentials.aliyun,
    tencentCredentials: credentials.tencentcloud,
    aliyun: a && {
      roles: a.roles.map((r) => ({ arn: r.arn, account: r.account, externalId: r.external_id, maxSessionSeconds: r.max_session, trustedOidcProviders: r.trusted_oidc_providers })),
      oidcProviders: a.oidc_providers.map((p) => ({ arn: p.arn, issuer: p.issuer, clientIds: p.client_ids })),
      ecs: a.ecs && { roleName: a.ecs.role_name, account: a.ecs.account, imdsV2Required: a.ecs.imds_v2_required },
      credentialsUri: a.credentials_uri,
    },
    tencent: t && {
      roles: t.roles.map((r) => ({ arn: r.arn, account: r.account, externalId: r.external_id, trustedOidcProviders: r.trusted_oidc_providers })),
      oidcProviders: t.oidc_providers.map((p) => ({ id: p.id, issuer: p.issuer, clientIds: p.client_ids })),
      cvm: t.cvm && { roleName: t.cvm.role_name, account: t.cvm.account },
    },
    modes: identity.modes,
  };
}
