// host:port as written in flags and config (a listen address, a sentinel): IPv6 hosts in brackets; the host may be
// empty (":9100"), the port is not range-checked; each caller states its own rules.
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^\s:/[\]]*)):(\d{1,5})$/.exec(text.trim());
  return m ? { host: m[1] ?? m[2], port: Number(m[3]) } : undefined;
}
