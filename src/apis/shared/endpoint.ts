// Config values shared by job types: endpoint URLs (validated once, trailing slash removed), regions, instance lists.
import { z } from 'zod';

export const endpointUrl = z
  .string()
  .url('must be a URL such as https://onsmqtt.cn-hangzhou.aliyuncs.com')
  .refine((u) => /^https?:\/\//.test(u), { message: 'must start with http:// or https://' })
  .transform((u) => u.replace(/\/+$/, ''));

/**
 * Which of the cloud's endpoints a job calls when it names none (`endpoint:` wins): `public` (default), or `vpc`,
 * the API's private endpoint, reachable only from inside the cloud's network. Per job, like `endpoint`: the private
 * endpoints are per region and per product, and an account's jobs may sit in several regions. Each API folder says
 * what the values mean for it.
 */
export const endpointType = z.enum(['public', 'vpc'], { errorMap: () => ({ message: 'must be public or vpc' }) }).default('public');
export type EndpointType = z.infer<typeof endpointType>;

export const regionId = z.string().regex(/^[a-z]{2,}(-[a-z0-9]+)+$/, 'a region ID such as cn-hangzhou');

/** A non-empty list of instance IDs, none repeated (checked with the list, so it is reported with other key problems). */
export const instanceIdList = z
  .array(z.string().min(1, 'must not be empty'))
  .min(1, 'list at least one instance ID')
  .superRefine((ids, ctx) => {
    const seen = new Set<string>();
    ids.forEach((id, i) => {
      if (seen.has(id)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: `duplicate instance ID "${id}"` });
      seen.add(id);
    });
  });
