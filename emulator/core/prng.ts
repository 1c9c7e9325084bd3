// Deterministic hashing and pseudo-random numbers, so a scenario plus a seed always yields the same cloud.

/** 32-bit FNV-1a of a string, finalised with murmur3's fmix so nearby strings spread. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** A second string hash, independent of hashString, with its own seed (murmur-style per character). */
export function hashStringSeeded(s: string, seed: number): number {
  let h = seed ^ s.length;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return fmix32(h);
}

// MurmurHash3's finaliser. src/cluster/sharding.ts has its own copy: the emulator imports nothing from the exporter.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash of up to four integers (each taken modulo 2^32, except that values up to 2^53 keep their
 * high part), as an unsigned 32-bit number. Cheap enough to call per device per request.
 */
export function hashInts(a: number, b: number, c = 0, d = 0): number {
  let h = fmix32(a ^ 0x9e3779b9);
  h = fmix32(h ^ Math.imul(b | 0, 0xcc9e2d51) ^ highPart(b));
  h = fmix32(h ^ Math.imul(c | 0, 0x1b873593) ^ highPart(c));
  h = fmix32(h ^ Math.imul(d | 0, 0xe6546b64) ^ highPart(d));
  return h;
}

function highPart(n: number): number {
  return n > 0xffffffff || n < 0 ? Math.floor(n / 4294967296) | 0 : 0;
}

/** A hash mapped to [0, 1). */
export function unitHash(a: number, b: number, c = 0, d = 0): number {
  return hashInts(a, b, c, d) / 4294967296;
}

/** sfc32: a small, fast, seedable generator returning numbers in [0, 1). */
export function createRng(seed: number): () => number {
  let a = fmix32(seed ^ 0x243f6a88);
  let b = fmix32(seed ^ 0x85a308d3);
  let c = fmix32(seed ^ 0x13198a2e);
  let d = 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** Integer in [min, max] from a unit value. */
export function intBetween(u: number, min: number, max: number): number {
  return min + Math.floor(u * (max - min + 1));
}
