// Self-metrics of the accounts' credentials, declared once: when the held credential expires, and how refreshes go.
import { Counter, Gauge, type Registry } from 'prom-client';
import { declareFamily, type FamilyDecl } from '../../metrics/declare';

const CREDENTIALS = {
  expiry: declareFamily({
    name: 'cloud_session_exporter_credentials_expiry_timestamp_seconds',
    type: 'gauge',
    help: "Expiry of the account's held cloud credential; absent for credentials without an expiry (static keys).",
    labels: ['account'],
    doc: "expiry of the credential the account holds now (STS, role, OIDC, instance-role and URI credentials); it moves forward at each refresh, which runs well before expiry (at a third of the credential's life left, at most 15 min before). Absent for static keys, and until the first credential arrives",
  }),
  refreshes: declareFamily({
    name: 'cloud_session_exporter_credentials_refreshes_total',
    type: 'counter',
    help: 'Attempts to obtain or refresh the account\'s cloud credential, by result.',
    labels: ['account', 'result'],
    doc: 'attempts to obtain or refresh the account\'s credential, by `result` ∈ `success`, `failure` (the first fetch included; static keys count one success). A failure keeps the held credential until it expires',
  }),
} as const;

export const CREDENTIAL_FAMILIES: readonly FamilyDecl[] = Object.values(CREDENTIALS);

export const REFRESH_RESULTS = ['success', 'failure'] as const;

export interface CredentialMetrics {
  expiry: Gauge<'account'>;
  refreshes: Counter<'account' | 'result'>;
}

export function createCredentialMetrics(registry: Registry): CredentialMetrics {
  const registers = [registry];
  return {
    expiry: new Gauge({ name: CREDENTIALS.expiry.name, help: CREDENTIALS.expiry.help, labelNames: CREDENTIALS.expiry.labels, registers }),
    refreshes: new Counter({ name: CREDENTIALS.refreshes.name, help: CREDENTIALS.refreshes.help, labelNames: CREDENTIALS.refreshes.labels, registers }),
  };
}
