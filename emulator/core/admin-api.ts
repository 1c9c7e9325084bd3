// Unsigned /_emulator/* endpoints: ground truth, statistics and runtime controls for tests, benchmarks and demos.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http-util';
import { ScenarioError, type Faults } from './scenario';
import type { EmulatorStats } from './stats';

export interface AdminOps {
  /** Per product (its truth key), per instance: what a perfect exporter would report now. */
  truth(): Promise<Record<string, unknown>>;
  stats(): EmulatorStats;
  resetStats(): void;
  faults(): Faults;
  /** Replaces the whole fault configuration (validated like the scenario's `faults`). */
  setFaults(faults: unknown): void;
}

export const ADMIN_PREFIX = '/_emulator/';

function parseJson(body: Buffer): unknown {
  return body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
}

export async function handleAdmin(ops: AdminOps, req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<void> {
  const route = `${req.method ?? 'GET'} ${path.slice(ADMIN_PREFIX.length - 1)}`;
  try {
    switch (route) {
      case 'GET /truth':
        return sendJson(res, 200, await ops.truth());
      case 'GET /stats':
        return sendJson(res, 200, ops.stats());
      case 'POST /stats/reset':
        ops.resetStats();
        return sendJson(res, 200, { ok: true });
      case 'GET /faults':
        return sendJson(res, 200, ops.faults());
      case 'POST /faults':
        ops.setFaults(parseJson(body) ?? {});
        return sendJson(res, 200, ops.faults());
    }
    return sendJson(res, 404, { error: `no admin endpoint ${route}` });
  } catch (err) {
    const message = err instanceof ScenarioError ? err.problems.join('; ') : (err as Error).message;
    return sendJson(res, 400, { error: message });
  }
}
