// Byte sizes in configuration ("64MiB", "512KB", "1048576").
const UNIT_BYTES: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

export function parseByteSize(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isInteger(text) && text > 0) return text;
    throw new Error('a size must be a positive whole number of bytes, or a number with a unit such as 64MiB');
  }
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i.exec(text.trim());
  if (!m) throw new Error('invalid size: use a number with a unit such as 512KiB, 64MiB or 1GB');
  const bytes = Math.floor(Number(m[1]) * UNIT_BYTES[(m[2] ?? 'b').toLowerCase()]);
  if (!(bytes > 0)) throw new Error('a size must be more than 0 bytes');
  return bytes;
}
