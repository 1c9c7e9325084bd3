// Endpoint URLs in job configs: validated once, trailing slash removed.
import { z } from 'zod';

export const endpointUrl = z
  .string()
  .url('must be a URL such as https://onsmqtt.cn-hangzhou.aliyuncs.com')
  .refine((u) => /^https?:\/\//.test(u), { message: 'must start with http:// or https://' })
  .transform((u) => u.replace(/\/+$/, ''));

export const regionId = z.string().regex(/^[a-z]{2,}(-[a-z0-9]+)+$/, 'a region ID such as cn-hangzhou');
