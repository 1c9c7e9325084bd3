// Redis over TLS as redis-server's tls-port serves it: a private CA and a client certificate (Redis asks for one by
// default), given in cluster.redis.tls; a wrong setup only degrades the replica and its warning says why; a renewed
// CA and client certificate are used from the next connection, without a restart.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
import { runExporter } from '../helpers/exporter-process';
import { startRedisServer, type RedisServer } from '../helpers/servers';
import { issue, makeCa, type CertFiles } from '../web/pki';
import { ENV, fleet, replica, replicaConfig, until } from './replicas';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`. */
function pki(dir: string, name: string): { ca: CertFiles; server: CertFiles; client: CertFiles } {
  fs.mkdirSync(dir, { recursive: true });
  const ca = makeCa(dir, `${name}-ca`);
  return {
    ca,
    server: issue(dir, ca, `${name}-redis`, { sans: ['IP:127.0.0.1'], usage: 'serverAuth' }),
    client: issue(dir, ca, `${name}-exporter`, { sans: ['DNS:exporter.example'], usage: 'clientAuth' }),
  };
}

/** Copies a file over `to` as cert-manager or a Secret volume would: whole, then renamed into place. */
function renew(from: string, to: string): void {
  fs.copyFileSync(from, `${to}.tmp`);
  fs.renameSync(`${to}.tmp`, to);
}

async function tlsRedis(p: { ca: CertFiles; server: CertFiles }, port?: number): Promise<RedisServer> {
  const r = await startRedisServer({ port, tls: { cert: p.server.cert, key: p.server.key, ca: p.ca.cert } });
  onTestFinished(() => r.stop());
  return r;
}

const degraded = async (r: { metrics(): Promise<{ value(name: string): number | undefined }> }) => (await r.metrics()).value('cloud_session_exporter_cluster_degraded');

describe('cluster Redis over TLS', () => {
  test('rediss:// with a private CA and a client certificate joins and leads; no client certificate or another CA degrades and says why; renewed files are used at the next connection', async () => {
    const { emu, file, dir } = await fleet({ sensors: 50, gateways: 50 });
    const first = pki(path.join(dir, 'pki-1'), 'first');
    const otherCa = makeCa(path.join(dir, 'pki-1'), 'other-ca');
    const r = await tlsRedis(first);

    // The replica's own copies, renewed in place later.
    const mine = path.join(dir, 'exporter-tls');
    fs.mkdirSync(mine);
    const files = { ca: path.join(mine, 'ca.crt'), cert: path.join(mine, 'tls.crt'), key: path.join(mine, 'tls.key') };
    renew(first.ca.cert, files.ca);
    renew(first.client.cert, files.cert);
    renew(first.client.key, files.key);

    const config = (id: string, tls: string) =>
      replicaConfig({ emuUrl: emu.url, file, schedule: '*/2 * * * * *', cluster: `  redis:\n    url: "rediss://127.0.0.1:${r.port}/0"\n    tls: ${tls}\n  replica_id: ${id}\n` });
    const good = await replica('good', config('good', `{ca_file: ${files.ca}, cert_file: ${files.cert}, key_file: ${files.key}}`));
    const noCert = await replica('no-cert', config('no-cert', `{ca_file: ${first.ca.cert}}`));
    const otherTrust = await replica('other-ca', config('other-ca', `{ca_file: ${otherCa.cert}, cert_file: ${first.client.cert}, key_file: ${first.client.key}}`));

    await until('the good replica leads on the shared quota, the other two keep to their local shares', async () => {
      const m = await good.metrics();
      return m.value('cloud_session_exporter_cluster_degraded') === 0 && m.value('cloud_session_exporter_cluster_leader', { job_name: 'fleet' }) === 1 && m.value('cloud_session_exporter_job_success', { job_name: 'fleet' }) === 1 && (await degraded(noCert)) === 1 && (await degraded(otherTrust)) === 1;
    }, 20_000);
    expect((await good.metrics()).value('cloud_session_exporter_cluster_replicas')).toBe(1);

    // The warning says why: the server's refusal of a client without a certificate, the untrusted server certificate.
    const warning = (p: { output(): string }) => p.output().split('\n').find((l) => l.includes('Redis cannot be reached')) ?? '';
    expect(warning(noCert)).toMatch(/"reason":"[^"]*certificate required/i);
    expect(warning(otherTrust)).toMatch(/"reason":"[^"]*(self[- ]signed certificate|unable to (get|verify))/i);
    expect(warning(good)).toBe('');

    const check = await runExporter([`--config.file=${good.configFile}`, '--config.check'], ENV);
    expect(check.code).toBe(0);
    expect(check.out).toContain(`cluster: Redis rediss://127.0.0.1:${r.port}/0, TLS trusting ${files.ca}, client certificate ${files.cert}, key prefix cse, replica good`);

    // A client certificate with another's key is refused at load, naming the keys (not at the first connection).
    const mismatched = path.join(dir, 'mismatched.yml');
    fs.writeFileSync(mismatched, config('x', `{cert_file: ${first.client.cert}, key_file: ${otherCa.key}}`));
    const bad = await runExporter([`--config.file=${mismatched}`, '--config.check'], ENV);
    expect(bad.code).not.toBe(0);
    expect(`${bad.out}${bad.err}`).toMatch(/cluster\.redis\.tls\.key_file \(line \d+\): does not belong to the certificate \(CN=first-exporter\)/);

    // A new CA and new certificates: the replica's files renewed in place, Redis restarted with the new ones on the
    // same port. Only the renewed files can connect now (both sides check the other's CA).
    const second = pki(path.join(dir, 'pki-2'), 'second');
    renew(second.ca.cert, files.ca);
    renew(second.client.cert, files.cert);
    renew(second.client.key, files.key);
    await r.stop();
    await until('the good replica degraded while Redis is away', async () => (await degraded(good)) === 1, 10_000);
    await tlsRedis(second, r.port);
    await until('the good replica back on the shared quota with the renewed files, no restart', async () => (await degraded(good)) === 0, 30_000);
    const polled = (await good.metrics()).value('cloud_session_exporter_job_last_success_timestamp_seconds', { job_name: 'fleet' }) ?? 0;
    await until('and polling as the leader', async () => {
      const m = await good.metrics();
      return m.value('cloud_session_exporter_cluster_leader', { job_name: 'fleet' }) === 1 && (m.value('cloud_session_exporter_job_last_success_timestamp_seconds', { job_name: 'fleet' }) ?? 0) > polled;
    }, 15_000);
    expect(good.child.exitCode).toBeNull();
    expect(await degraded(otherTrust)).toBe(1);

    // The private key's content is never shown.
    const keyLine = fs.readFileSync(first.client.key, 'utf8').split('\n')[1];
    for (const p of [good, noCert, otherTrust]) {
      const scrape = await p.scrape();
      const status = await p.get('/');
      const shown = await p.get('/config');
      const { code } = await p.terminate();
      expect(code).toBe(0);
      for (const text of [p.output(), scrape, status.body, shown.body]) expect(text).not.toContain(keyLine);
    }
  }, 90_000);
});
