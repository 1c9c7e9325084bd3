// The `mqtt:` section of a scenario (instances with simulated fleets and explicit clients) and its cross-checks,
// including the embedded broker's references to them.
import { z } from 'zod';
import { BrokerScenarioSchema, type BrokerScenario } from '../../broker/scenario';
import { MAX_TOKEN_VALIDITY_MS } from '../../broker/tokens';
import { checkInstances, name, type Scenario } from '../../core/scenario';

const ratio = z.number().min(0).max(1);

const FleetSchema = z
  .object({
    group_id: name.refine((g) => !g.includes('@@@'), { message: 'must not contain "@@@"' }),
    prefix: z.string().default('dev-'),
    size: z.number().int().min(0).max(100_000_000),
    digits: z.number().int().min(1).max(12).optional(),
    online_ratio: ratio.default(0.8),
    // Expected share of the fleet's devices that change status per minute.
    churn_per_minute: ratio.default(0),
  })
  .strict();

const MqttClientSchema = z.object({ client_id: name, online: z.boolean() }).strict();

/**
 * Answers that leave out or add client IDs, as a cloud may (the truth stays exact): `omit` IDs are left out of every
 * BatchQuerySessionByClientIds answer and answered without OnlineStatus by QuerySessionByClientId; `extra` IDs are
 * added to every Batch answer that did not ask for them; `omit_rate` leaves out each requested ID with that
 * probability (both APIs); `extra_rate` is the share of Batch answers carrying one ID nobody asked for. Replaceable at
 * runtime: POST /_emulator/mqtt/<instance>/partial_answers.
 */
export const PartialAnswersSchema = z
  .object({
    omit: z.array(name).default([]),
    extra: z.array(name).default([]),
    omit_rate: ratio.default(0),
    extra_rate: ratio.default(0),
  })
  .strict();

const MqttInstanceSchema = z
  .object({
    instance_id: name,
    region: name.default('cn-hangzhou'),
    account: name.optional(),
    batch_supported: z.boolean().default(true),
    fleets: z.array(FleetSchema).default([]),
    clients: z.array(MqttClientSchema).default([]),
    // Online status from the embedded broker's real connections instead of the simulation (needs `broker:`).
    status_from_broker: z.boolean().optional(),
    // Every call about the instance is refused as a RAM policy would refuse it (InstancePermissionCheckFailed).
    permission_denied: z.boolean().default(false),
    partial_answers: PartialAnswersSchema.default({}),
  })
  .strict();

export const MQTT_SCENARIO = {
  mqtt: z
    .object({
      instances: z.array(MqttInstanceSchema).default([]),
      /**
       * Longest life of a token ApplyToken issues, in seconds (default 30 days, the documented maximum): a longer
       * ExpireTime is accepted and cut to it, as the cloud cuts one beyond 30 days. Tests set seconds.
       */
      token_max_validity: z
        .number()
        .positive()
        .max(MAX_TOKEN_VALIDITY_MS / 1000)
        .default(MAX_TOKEN_VALIDITY_MS / 1000),
    })
    .strict()
    .default({}),
  broker: BrokerScenarioSchema.optional(),
};

export type MqttInstanceConfig = z.output<typeof MqttInstanceSchema>;
export type FleetConfig = MqttInstanceConfig['fleets'][number];
export type PartialAnswers = z.output<typeof PartialAnswersSchema>;

/** The product's keys of a validated scenario, typed. */
export function mqttSections(sc: Scenario): { mqtt: { instances: MqttInstanceConfig[]; token_max_validity: number }; broker?: BrokerScenario } {
  return { mqtt: sc.mqtt as { instances: MqttInstanceConfig[]; token_max_validity: number }, broker: sc.broker as BrokerScenario | undefined };
}

export function checkMqttScenario(sc: Scenario, ctx: z.RefinementCtx): void {
  const { mqtt, broker } = mqttSections(sc);
  checkInstances(sc, 'mqtt', mqtt.instances, 'aliyun', ctx);
  mqtt.instances.forEach((inst, i) => {
    const fleets = new Set<string>();
    inst.fleets.forEach((f, j) => {
      const k = `${f.group_id}@@@${f.prefix}`;
      if (fleets.has(k)) ctx.addIssue({ code: 'custom', path: ['mqtt', 'instances', i, 'fleets', j], message: `two fleets share group_id "${f.group_id}" and prefix "${f.prefix}"` });
      fleets.add(k);
      const digits = f.digits ?? Math.max(6, String(f.size).length);
      if (String(f.size).length > digits) ctx.addIssue({ code: 'custom', path: ['mqtt', 'instances', i, 'fleets', j, 'digits'], message: `${digits} digits cannot number ${f.size} devices` });
    });
    if (inst.status_from_broker && broker === undefined) ctx.addIssue({ code: 'custom', path: ['mqtt', 'instances', i, 'status_from_broker'], message: 'needs a `broker:` section' });
  });
  const ids = new Set(mqtt.instances.map((i) => i.instance_id));
  broker?.devices.forEach((d, i) => {
    if (!ids.has(d.instance_id)) ctx.addIssue({ code: 'custom', path: ['broker', 'devices', i, 'instance_id'], message: `no MQTT instance "${d.instance_id}" under mqtt.instances` });
    if (d.account !== undefined && !sc.credentials.some((c) => c.provider === 'aliyun' && c.account === d.account)) {
      ctx.addIssue({ code: 'custom', path: ['broker', 'devices', i, 'account'], message: `no aliyun credential has account "${d.account}"` });
    }
  });
}
