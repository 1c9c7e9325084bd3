// The scenario as this emulator reads it: the core keys plus every registered product's keys (products.ts).
import { PRODUCTS } from './products';
import { checkIdentityScenario, identityScenarioSchema } from './identity/scenario';
import { faultsSchema, parseScenarioText, readScenarioFile, scenarioSchema, ScenarioError, describeZodIssues, validateScenario, type Faults, type Scenario } from './core/scenario';

// The identity endpoints (STS, instance metadata, credentials URI) own the `identity:` key.
const SCHEMA = scenarioSchema(PRODUCTS, [{ scenario: { identity: identityScenarioSchema.optional() }, check: checkIdentityScenario }]);
const FAULTS = faultsSchema(PRODUCTS.flatMap((p) => p.apis.map((a) => a.name)));

/** Validates an already-parsed object (e.g. built by a test) and fills in defaults. */
export function normalizeScenario(input: unknown, sourceName = 'scenario'): Scenario {
  return validateScenario(SCHEMA, input, sourceName);
}

export function parseScenario(yamlText: string, sourceName = 'scenario'): Scenario {
  return parseScenarioText(SCHEMA, yamlText, sourceName);
}

export function loadScenario(path: string): Scenario {
  return readScenarioFile(SCHEMA, path);
}

/** A runtime fault configuration (POST /_emulator/faults), validated like the scenario's `faults`. */
export function parseFaults(input: unknown, sourceName = 'faults'): Faults {
  const result = FAULTS.safeParse(input ?? {});
  if (!result.success) throw new ScenarioError(sourceName, describeZodIssues(result.error));
  return result.data;
}

/** The documented QPS of every emulated API: the default rate limits, unless the scenario's rate_limits says otherwise. */
export const DEFAULT_QPS: Readonly<Record<string, number>> = Object.fromEntries(PRODUCTS.flatMap((p) => p.apis.map((a) => [a.name, a.qps])));
