// The scenario's optional `broker:` section: the embedded MQTT broker's address, delivery faults and real device clients.
import { z } from 'zod';

const nonNegativeInt = z.number().int().min(0);

/** `delay_ms: 250` or `delay_ms: {min: 300, max: 400}`: each delivery of a published message is held that long. */
const DelayRangeSchema = z.union([
  nonNegativeInt.max(600_000).transform((n) => ({ min: n, max: n })),
  z
    .object({ min: nonNegativeInt.max(600_000).default(0), max: nonNegativeInt.max(600_000).default(0) })
    .strict()
    .refine((r) => r.min <= r.max, { message: 'min must not exceed max' }),
]);

const BrokerFaultsSchema = z
  .object({
    /** Share of published messages silently not delivered. */
    drop_rate: z.number().min(0).max(1).default(0),
    delay_ms: DelayRangeSchema.default({ min: 0, max: 0 }),
  })
  .strict();

/** A runtime change: only the keys given are replaced. */
export const BrokerFaultsPatchSchema = z
  .object({ drop_rate: z.number().min(0).max(1).optional(), delay_ms: DelayRangeSchema.optional() })
  .strict();

const BrokerDevicesSchema = z
  .object({
    instance_id: z.string().min(1),
    group_id: z.string().regex(/^GID[_-][A-Za-z0-9_-]+$/, 'a group ID such as GID_sensor or GID-sensor'),
    /** Devices are `<group_id>@@@<prefix><n>`, n = 1..count. */
    prefix: z.string().regex(/^[A-Za-z0-9_.:-]*$/).default('dev-'),
    count: z.number().int().min(1).max(1000),
    /** Credential used to sign in (default: the instance's account, else the first Alibaba credential). */
    account: z.string().min(1).optional(),
  })
  .strict();

export const BrokerScenarioSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 (default) picks a free port. */
    port: nonNegativeInt.max(65535).default(0),
    drop_rate: z.number().min(0).max(1).default(0),
    delay_ms: DelayRangeSchema.default({ min: 0, max: 0 }),
    /** Real MQTT device connections opened when the emulator starts. */
    devices: z.array(BrokerDevicesSchema).default([]),
  })
  .strict();

export type BrokerScenario = z.output<typeof BrokerScenarioSchema>;
export type BrokerFaults = z.output<typeof BrokerFaultsSchema>;
export type BrokerDevices = z.output<typeof BrokerDevicesSchema>;
