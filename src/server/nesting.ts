/**
 * How deeply a JSON text nests, read from its bytes without parsing or
 * recursion (pure), so a body can be refused before anything walks it.
 * Brackets inside strings do not count; the text need not be valid JSON
 * (JSON.parse judges that afterwards).
 */

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
/** What a byte outside a string does to the depth: { and [ open, } and ] close. */
const STEP: ReadonlyMap<number, number> = new Map([[0x7b, 1], [0x5b, 1], [0x7d, -1], [0x5d, -1]]);

/** Where the string that starts before `from` ends: the index of its closing quote, or the end of the text. */
function stringEnd(text: Uint8Array, from: number): number {
  let i = from;
  while (i < text.length && text[i] !== QUOTE) i += text[i] === BACKSLASH ? 2 : 1;
  return i;
}

/** The deepest nesting of objects and arrays in `text`, stopping early once it passes `limit`. */
export function nestingDepth(text: Uint8Array, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length && deepest <= limit; i += 1) {
    const byte = text[i] ?? 0;
    if (byte === QUOTE) {
      i = stringEnd(text, i + 1);
      continue;
    }
    depth = Math.max(0, depth + (STEP.get(byte) ?? 0));
    deepest = Math.max(deepest, depth);
  }
  return deepest;
}
