// Secret values given inline or as `<key>_file`, and the change detection that lets `sts` credentials rotate without a reload.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { registerSecret } from '../../util/redact';

/** One value per key, each inline or from a file. */
export class SecretValues<K extends string> {
  private readonly files: Array<[K, string]> = [];
  private readonly inline = new Map<K, string>();

  constructor(cfg: Partial<Record<string, unknown>>, keys: readonly K[], configDir: string) {
    for (const k of keys) {
      const file = cfg[`${k}_file`];
      const value = cfg[k];
      if (typeof file === 'string') this.files.push([k, path.resolve(configDir, file)]);
      else if (typeof value === 'string') {
        registerSecret(value);
        this.inline.set(k, value);
      }
    }
  }

  get fromFiles(): boolean {
    return this.files.length > 0;
  }

  /** What the files look like now (inode, size, mtime): a new value means some file was replaced or rewritten. */
  signature(): string {
    return this.files
      .map(([, f]) => {
        try {
          // stat follows symlinks: a Kubernetes secret's `..data` swap shows up as a new inode.
          const st = fs.statSync(f);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code ?? 'error';
        }
      })
      .join('|');
  }

  /** Every value, files read now; each one registered for redaction before anything else can see it. */
  read(): Record<K, string> & { fingerprint: string } {
    const out = {} as Record<K, string>;
    for (const [k, v] of this.inline) out[k] = v;
    for (const [k, f] of this.files) {
      let v: string;
      try {
        v = fs.readFileSync(f, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw new Error(`cannot read ${k}_file ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (v === '') throw new Error(`${k}_file ${f} is empty`);
      registerSecret(v);
      out[k] = v;
    }
    const fingerprint = createHash('sha256').update(JSON.stringify(out)).digest('hex').slice(0, 16);
    return Object.assign(out, { fingerprint });
  }
}

/**
 * Reads the values again only when the files changed, and only once they have stayed unchanged for `settleMs`: a
 * writer replacing three files one after the other is never caught half-way (Kubernetes swaps them at once anyway).
 */
export class WatchedSecrets<K extends string> {
  private seen = '';
  private last: (Record<K, string> & { fingerprint: string }) | undefined;

  constructor(
    private readonly values: SecretValues<K>,
    private readonly settleMs: number,
  ) {}

  async current(): Promise<Record<K, string> & { fingerprint: string }> {
    let sig = this.values.signature();
    if (this.last && sig === this.seen) return this.last;
    if (this.last) {
      // Changed since the last read: wait until it stops changing (bounded: three settle periods).
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, this.settleMs));
        const again = this.values.signature();
        if (again === sig) break;
        sig = again;
      }
    }
    const read = this.values.read();
    this.seen = sig;
    this.last = read;
    return read;
  }
}
