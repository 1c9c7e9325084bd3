// FNV-1a over UTF-16 code units: cheap, stable across processes and versions. Used for change detection
// (inventories) and shard assignment (cluster/sharding.ts), never for security.
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
