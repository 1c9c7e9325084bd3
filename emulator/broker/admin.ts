// Unsigned /_emulator/broker/* endpoints: the embedded MQTT broker's address, faults, connections and restarts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../core/http-util';
import type { MqttBroker } from './broker';
import { ScenarioError } from '../core/scenario';

export const BROKER_ADMIN_PREFIX = '/_emulator/broker';

function parseJson(body: Buffer): Record<string, unknown> {
  const v: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('the body must be a JSON object');
  return v as Record<string, unknown>;
}

/**
 * GET  /_emulator/broker                 {url, faults, stats}
 * GET  /_emulator/broker/clients/<id>    client IDs connected to instance <id>
 * POST /_emulator/broker/faults          {"drop_rate": 0.5, "delay_ms": {"min": 300, "max": 400}} (keys given are replaced)
 * POST /_emulator/broker/disconnect      {"instance_id": "...", "client_id": "..."}: kill that connection
 * POST /_emulator/broker/restart         drop every connection and session, listen again on the same port
 * POST /_emulator/broker/revoke_tokens   {"instance_id": "..."}: revoke every token of the instance (RevokeToken)
 */
export async function handleBrokerAdmin(broker: MqttBroker | undefined, req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<void> {
  if (broker === undefined) return sendJson(res, 404, { error: 'the scenario has no `broker:` section' });
  const route = `${req.method ?? 'GET'} ${path.slice(BROKER_ADMIN_PREFIX.length) || '/'}`;
  try {
    if (route === 'GET /') return sendJson(res, 200, { url: broker.url, faults: broker.faults(), stats: broker.stats() });
    if (route === 'POST /faults') return sendJson(res, 200, broker.setFaults(parseJson(body)));
    if (route === 'POST /restart') {
      await broker.restart();
      return sendJson(res, 200, { ok: true, url: broker.url });
    }
    if (route === 'POST /disconnect') {
      const { instance_id, client_id } = parseJson(body);
      if (typeof instance_id !== 'string' || typeof client_id !== 'string') return sendJson(res, 400, { error: 'body must be {"instance_id": "...", "client_id": "..."}' });
      return sendJson(res, 200, { disconnected: broker.disconnectClient(instance_id, client_id) });
    }
    if (route === 'POST /revoke_tokens') {
      const { instance_id } = parseJson(body);
      if (typeof instance_id !== 'string') return sendJson(res, 400, { error: 'body must be {"instance_id": "..."}' });
      return sendJson(res, 200, { revoked: broker.revokeTokens(instance_id) });
    }
    const clients = /^GET \/clients\/([^/]+)$/.exec(route);
    if (clients !== null) return sendJson(res, 200, broker.connectedClients(decodeURIComponent(clients[1] as string)));
    return sendJson(res, 404, { error: `no broker admin endpoint ${route}` });
  } catch (err) {
    const message = err instanceof ScenarioError ? err.problems.join('; ') : (err as Error).message;
    return sendJson(res, 400, { error: message });
  }
}
