import { z } from 'zod';

/** The characters of the names the config gives things (jobs, quota groups, replicas): label- and key-safe. */
const IDENTIFIER = /^[a-zA-Z0-9_.:-]+$/;

export function identifier(what = ''): z.ZodString {
  return z.string().regex(IDENTIFIER, `${what ? `${what} use ` : ''}letters, digits, and _ . : -`);
}
