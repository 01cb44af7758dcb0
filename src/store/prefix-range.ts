/** Byte ranges for `list`: the keys starting with a prefix are those in [prefix, prefixEnd(prefix)). */
import { Buffer } from "node:buffer";

/**
 * The smallest byte string above every string starting with `prefix`, or undefined when there is
 * none (an empty prefix, or one of only 0xff bytes).
 */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  if (n === 0) return undefined;
  const end = Buffer.from(prefix.subarray(0, n));
  end[n - 1] = prefix[n - 1]! + 1;
  return end;
}
