// Certificates for the web config tests, made with Debian's openssl: CAs, server and client certificates (also expired ones).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
  /** As Node reports a peer's: AA:BB:… */
  fingerprint256: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function fingerprint(certFile: string): string {
  return new crypto.X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

/** A self-signed CA (EC P-256: fast to make). */
export function makeCa(dir: string, name: string): CertFiles {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  return { cert, key, fingerprint256: fingerprint(cert) };
}

interface IssueOptions {
  /** subjectAltName entries in openssl's syntax: DNS:x, IP:127.0.0.1, email:a@b, URI:spiffe://… */
  sans: string[];
  usage: 'serverAuth' | 'clientAuth';
  /** YYYYMMDDHHMMSSZ; both or neither. */
  startDate?: string;
  endDate?: string;
}

/** A leaf certificate signed by `ca`, written as `<name>.crt` / `<name>.key` in `dir` (overwriting: rotation tests rely on it). */
export function issue(dir: string, ca: CertFiles, name: string, o: IssueOptions): CertFiles {
  const work = fs.mkdtempSync(path.join(dir, `.issue-${name}-`));
  const key = path.join(work, 'leaf.key');
  const csr = path.join(work, 'leaf.csr');
  const crt = path.join(work, 'leaf.crt');
  const ext = path.join(work, 'ext.cnf');
  const cnf = path.join(work, 'ca.cnf');
  fs.writeFileSync(
    ext,
    [`basicConstraints=critical,CA:FALSE`, `keyUsage=critical,digitalSignature`, `extendedKeyUsage=${o.usage}`, `subjectAltName=${o.sans.join(',')}`].join('\n') + '\n',
  );
  fs.writeFileSync(path.join(work, 'index.txt'), '');
  fs.writeFileSync(
    cnf,
    ['[ca]', 'default_ca = d', '[d]', `database = ${path.join(work, 'index.txt')}`, `new_certs_dir = ${work}`, 'rand_serial = yes', 'default_md = sha256', 'policy = p', 'unique_subject = no', 'default_days = 30', '[p]', 'commonName = supplied'].join('\n') + '\n',
  );
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], work);
  const dates = o.startDate && o.endDate ? ['-startdate', o.startDate, '-enddate', o.endDate] : [];
  openssl(['ca', '-batch', '-notext', '-config', cnf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', crt, '-extfile', ext, ...dates], work);
  const outCert = path.join(dir, `${name}.crt`);
  const outKey = path.join(dir, `${name}.key`);
  // Written whole and then renamed, as a careful operator (or cert-manager) would, so a watcher never sees half a file.
  fs.copyFileSync(crt, `${outCert}.tmp`);
  fs.copyFileSync(key, `${outKey}.tmp`);
  fs.renameSync(`${outKey}.tmp`, outKey);
  fs.renameSync(`${outCert}.tmp`, outCert);
  fs.rmSync(work, { recursive: true, force: true });
  return { cert: outCert, key: outKey, fingerprint256: fingerprint(outCert) };
}

/** Everything the TLS tests need, in one temp dir. */
export interface TestPki {
  dir: string;
  ca: CertFiles;
  server: CertFiles;
  client: CertFiles;
  expiredClient: CertFiles;
  wrongCaClient: CertFiles;
  wrongCa: CertFiles;
}

export function makeTestPki(dir: string): TestPki {
  const ca = makeCa(dir, 'ca');
  const wrongCa = makeCa(dir, 'wrong-ca');
  return {
    dir,
    ca,
    wrongCa,
    server: issue(dir, ca, 'server', { sans: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'serverAuth' }),
    client: issue(dir, ca, 'client', { sans: ['DNS:prometheus.example', 'email:ops@example.com', 'URI:spiffe://example.org/prometheus', 'IP:::1'], usage: 'clientAuth' }),
    expiredClient: issue(dir, ca, 'expired-client', { sans: ['DNS:prometheus.example'], usage: 'clientAuth', startDate: '20200101000000Z', endDate: '20210101000000Z' }),
    wrongCaClient: issue(dir, wrongCa, 'wrong-ca-client', { sans: ['DNS:prometheus.example'], usage: 'clientAuth' }),
  };
}
