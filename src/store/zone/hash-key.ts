/** The hash of zone keys and sorted-set members (both byte strings). */

/** FNV-1a over the key's bytes, then a finalizer so the low bits (the bucket) mix all of them. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}
